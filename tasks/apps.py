from __future__ import annotations

from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "tasks"
    verbose_name = "Tasks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Handlers are registered at import time. Importing them here, in every
        # process, means a worker's parent has them loaded before it forks, so
        # no work-horse pays for the import.
        from tasks import registry

        registry.autodiscover()
