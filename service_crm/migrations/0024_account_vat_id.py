"""Account.vat_id: the VAT identification number, normalised and checked on save (issue 16,
master data); accounts sharing one are likely duplicates."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("service_crm", "0023_opportunities")]

    operations = [
        migrations.AddField(
            model_name="account",
            name="vat_id",
            field=models.CharField(
                blank=True, db_index=True, default="", max_length=20, verbose_name="VAT id",
                help_text="VAT identification number with its country prefix, e.g. "
                          "DE136695976; accounts sharing one are shown as likely duplicates"),
        ),
    ]
