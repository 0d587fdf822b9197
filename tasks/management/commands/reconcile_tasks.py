from __future__ import annotations

from django.core.management.base import BaseCommand

from tasks.reconciler import reconcile


class Command(BaseCommand):
    help = "Repair differences between PostgreSQL and Redis: enqueue lost jobs, recover tasks of dead workers."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--verbose-details", action="store_true", help="List every repaired task.")

    def handle(self, *args, **options) -> str:
        report = reconcile(actor="reconcile_tasks")
        if options["verbose_details"]:
            for line in report.details:
                self.stdout.write(line)
        return report.summary()
