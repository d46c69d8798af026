# Written by hand: an asset may belong to a parent asset (a line and its machines).

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('service_crm', '0021_account_health_worked_out'),
    ]

    operations = [
        migrations.AddField(
            model_name='asset',
            name='parent',
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name='children',
                to='service_crm.asset',
            ),
        ),
    ]
