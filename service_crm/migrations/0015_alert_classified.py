from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("service_crm", "0014_sales_orders"),
    ]

    operations = [
        migrations.AddField(
            model_name="alert",
            name="classified",
            field=models.BooleanField(
                default=True,
                help_text="False: led by a metric the equipment model does not name; the "
                          "failure mode is a guess from the metric's name until the desk "
                          "classifies it"),
        ),
    ]
