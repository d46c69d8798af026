"""The audit log is append-only: the database itself refuses UPDATE and DELETE."""

from django.db import migrations

SQL = """
CREATE OR REPLACE FUNCTION service_crm_auditlog_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'service_crm_auditlog is append-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER service_crm_auditlog_append_only
    BEFORE UPDATE OR DELETE ON service_crm_auditlog
    FOR EACH ROW EXECUTE FUNCTION service_crm_auditlog_append_only();
"""
REVERSE = """
DROP TRIGGER IF EXISTS service_crm_auditlog_append_only ON service_crm_auditlog;
DROP FUNCTION IF EXISTS service_crm_auditlog_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("service_crm", "0001_initial")]
    operations = [migrations.RunSQL(SQL, REVERSE)]
