# Written by hand: the sales pipeline (issue 16, item 4). Opportunities with stages, value and
# probability; quotes are offers linked to an opportunity (with equipment and service lines);
# an equipment model's expected life tells which assets are ageing.

from decimal import Decimal

import django.core.validators
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('service_crm', '0022_asset_parent'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='equipmentmodel',
            name='expected_life_years',
            field=models.PositiveSmallIntegerField(
                default=15,
                help_text='Service life of a machine of this model; an asset near it is ageing '
                          '(a replacement or retrofit opportunity)',
                validators=[django.core.validators.MinValueValidator(1)]),
        ),
        migrations.AlterField(
            model_name='offerline',
            name='kind',
            field=models.CharField(choices=[
                ('part', 'Spare part'), ('labour', 'Labour'),
                ('contract', 'Maintenance contract'), ('renewal', 'Contract renewal'),
                ('upgrade', 'Contract upgrade'), ('equipment', 'Equipment'),
                ('service', 'Service')], max_length=20),
        ),
        migrations.CreateModel(
            name='Opportunity',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name='ID')),
                ('title', models.CharField(max_length=200)),
                ('kind', models.CharField(choices=[
                    ('new_equipment', 'New equipment'), ('upgrade', 'Upgrade'),
                    ('retrofit', 'Retrofit'), ('contract', 'Service contract')],
                    max_length=20)),
                ('stage', models.CharField(choices=[
                    ('qualify', 'Qualify'), ('propose', 'Propose'), ('negotiate', 'Negotiate'),
                    ('won', 'Won'), ('lost', 'Lost')], default='qualify', max_length=20)),
                ('value', models.DecimalField(
                    decimal_places=2, max_digits=14,
                    validators=[django.core.validators.MinValueValidator(Decimal('0'))])),
                ('currency', models.CharField(max_length=3, validators=[
                    django.core.validators.RegexValidator(
                        '^[A-Z]{3}$', 'An ISO 4217 code, three capital letters (EUR).')])),
                ('probability_pct', models.PositiveSmallIntegerField(
                    help_text='chance of winning, 0..100',
                    validators=[django.core.validators.MaxValueValidator(100)])),
                ('probability_manual', models.BooleanField(
                    default=False, help_text="set by hand rather than the stage's default")),
                ('expected_close', models.DateField()),
                ('source', models.CharField(choices=[
                    ('desk', 'Entered by the office'), ('at_risk_account', 'At-risk account'),
                    ('ageing_asset', 'Ageing asset')], default='desk', max_length=20)),
                ('source_note', models.CharField(
                    blank=True, help_text='why it was started (the at-risk reasons, the age)',
                    max_length=300)),
                ('lost_reason', models.CharField(blank=True, max_length=300)),
                ('created_at', models.DateTimeField()),
                ('closed_at', models.DateTimeField(blank=True, null=True)),
                ('account', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT,
                                              related_name='opportunities',
                                              to='service_crm.account')),
                ('asset', models.ForeignKey(blank=True, null=True,
                                            on_delete=django.db.models.deletion.SET_NULL,
                                            related_name='opportunities',
                                            to='service_crm.asset')),
                ('created_by', models.ForeignKey(blank=True, null=True,
                                                 on_delete=django.db.models.deletion.SET_NULL,
                                                 related_name='+',
                                                 to=settings.AUTH_USER_MODEL)),
                ('owner', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT,
                                            related_name='opportunities',
                                            to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name_plural': 'opportunities',
                'ordering': ['expected_close', 'pk'],
            },
        ),
        migrations.AddField(
            model_name='offer',
            name='opportunity',
            field=models.ForeignKey(blank=True, null=True,
                                    on_delete=django.db.models.deletion.SET_NULL,
                                    related_name='quotes', to='service_crm.opportunity'),
        ),
        migrations.AddIndex(
            model_name='opportunity',
            index=models.Index(fields=['stage', 'expected_close'],
                               name='opportunity_stage_close'),
        ),
        migrations.AddConstraint(
            model_name='opportunity',
            constraint=models.CheckConstraint(condition=models.Q(('probability_pct__lte', 100)),
                                              name='opportunity_probability_pct'),
        ),
        migrations.AddConstraint(
            model_name='opportunity',
            constraint=models.CheckConstraint(condition=models.Q(('value__gte', 0)),
                                              name='opportunity_value_not_negative'),
        ),
    ]
