# Photos and the customer's signature on a work order (issue 15, field evidence).

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import service_crm.models.field_evidence


class Migration(migrations.Migration):

    dependencies = [
        ('service_crm', '0018_price_list'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='WorkOrderPhoto',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('image', models.FileField(max_length=200, upload_to=service_crm.models.field_evidence._photo_path)),
                ('caption', models.CharField(blank=True, max_length=200)),
                ('width', models.PositiveIntegerField()),
                ('height', models.PositiveIntegerField()),
                ('uploaded_at', models.DateTimeField()),
                ('uploaded_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('work_order', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='photos', to='service_crm.workorder')),
            ],
            options={
                'ordering': ['work_order', 'uploaded_at', 'pk'],
            },
        ),
        migrations.CreateModel(
            name='WorkOrderSignature',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('signed_by', models.CharField(help_text='name of the person who signed', max_length=120)),
                ('image', models.FileField(max_length=200, upload_to=service_crm.models.field_evidence._signature_path)),
                ('signed_at', models.DateTimeField()),
                ('work_order', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='signature', to='service_crm.workorder')),
            ],
        ),
    ]
