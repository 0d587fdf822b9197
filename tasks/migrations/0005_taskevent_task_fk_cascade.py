from django.db import migrations

# The name Django gave the constraint in 0001_initial (it is derived from the table and column names, so every
# installation has the same one); keeping it lets a later AlterField find and replace the constraint as usual.
FK = "tasks_taskevent_task_id_bfe419b4_fk_tasks_task_id"


def _swap(on_delete: str) -> str:
    # One ALTER TABLE drops and re-adds the constraint atomically, so there is no moment without it. NOT VALID skips
    # the scan of every event under the ALTER's lock; the VALIDATE that follows scans without blocking writes.
    return (
        f"ALTER TABLE tasks_taskevent DROP CONSTRAINT {FK}, "
        f"ADD CONSTRAINT {FK} FOREIGN KEY (task_id) REFERENCES tasks_task (id){on_delete} "
        "DEFERRABLE INITIALLY DEFERRED NOT VALID"
    )


class Migration(migrations.Migration):
    """Deleting a task in PostgreSQL deletes its events (ON DELETE CASCADE).

    ``purge_tasks`` deletes only task rows and lets the database delete their
    events: with the plain deferred foreign key it had to delete the events
    itself and PostgreSQL then checked every deleted task for remaining events
    at commit, which took as long as the delete. Django's own ``on_delete``
    (``models.CASCADE``) is unchanged, so the ORM still deletes events first
    and the model state, hence ``makemigrations``, does not see this.

    Not atomic, so the VALIDATE runs in its own transaction and never holds the
    exclusive lock the swap takes, however many events there are.
    """

    atomic = False

    dependencies = [("tasks", "0004_task_error_trigram_index")]

    operations = [
        migrations.RunSQL(
            [_swap(" ON DELETE CASCADE"), f"ALTER TABLE tasks_taskevent VALIDATE CONSTRAINT {FK}"],
            reverse_sql=[_swap(""), f"ALTER TABLE tasks_taskevent VALIDATE CONSTRAINT {FK}"],
        ),
    ]
