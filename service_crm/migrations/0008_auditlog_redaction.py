"""The audit log stays append-only, with one exception: an erasure (GDPR art. 17) may replace
personal data inside ``before``/``after``/``actor_label`` of existing rows, and only inside a
transaction that set ``aftercare.audit_redaction`` (service_crm.services.privacy). Which row,
when, what action on what object: none of that can change."""

from django.db import migrations

SQL = """
CREATE OR REPLACE FUNCTION service_crm_auditlog_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND current_setting('aftercare.audit_redaction', true) = 'on'
       AND NEW.id = OLD.id AND NEW.at = OLD.at
       AND NEW.actor_id IS NOT DISTINCT FROM OLD.actor_id AND NEW.action = OLD.action
       AND NEW.object_type = OLD.object_type AND NEW.object_id = OLD.object_id THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'service_crm_auditlog is append-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;
"""
REVERSE = """
CREATE OR REPLACE FUNCTION service_crm_auditlog_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'service_crm_auditlog is append-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;
"""


class Migration(migrations.Migration):
    dependencies = [("service_crm", "0007_document_content_check")]
    operations = [migrations.RunSQL(SQL, REVERSE)]
