from django.conf import settings
from django.db import migrations


def seed(apps, schema_editor):
    """Start with the retention the settings promised: completed and cancelled for TASK_RETENTION_DAYS, failed longer."""
    RetentionPolicy = apps.get_model("tasks", "RetentionPolicy")
    defaults = {
        "completed": settings.TASK_RETENTION_DAYS,
        "cancelled": settings.TASK_RETENTION_DAYS,
        "failed": settings.FAILED_TASK_RETENTION_DAYS,
    }
    for status, days in defaults.items():
        RetentionPolicy.objects.get_or_create(status=status, queue="", defaults={"days": days})


def unseed(apps, schema_editor):
    apps.get_model("tasks", "RetentionPolicy").objects.filter(queue="").delete()


class Migration(migrations.Migration):
    dependencies = [("tasks", "0002_retention_policy")]

    operations = [migrations.RunPython(seed, unseed)]
