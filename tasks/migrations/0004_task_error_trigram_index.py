from django.db import migrations


class Migration(migrations.Migration):
    """A trigram index so the admin can search error text without scanning every task.

    It indexes UPPER(error_message) because Django's icontains compiles to
    ``UPPER(col) LIKE UPPER(%s)`` on PostgreSQL. Tasks without an error produce
    no trigrams, so the index only grows with failed and retrying tasks.
    """

    dependencies = [("tasks", "0003_seed_retention_policies")]

    operations = [
        migrations.RunSQL(
            "CREATE EXTENSION IF NOT EXISTS pg_trgm",
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS task_error_trgm_idx ON tasks_task "
            "USING gin (UPPER(error_message) gin_trgm_ops)",
            reverse_sql="DROP INDEX IF EXISTS task_error_trgm_idx",
        ),
    ]
