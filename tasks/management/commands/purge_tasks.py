from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tasks.retention import purge_cron_scheduler, tasks_purge


class Command(BaseCommand):
    help = "Delete finished tasks older than their retention policy, with their events and RQ job keys."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Print what would be deleted per status and queue.")
        parser.add_argument(
            "--batch-size", type=int, default=None, help="Tasks per transaction (default TASK_PURGE_BATCH_SIZE)."
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar even on a terminal.")
        parser.add_argument(
            "--cron",
            metavar="EXPRESSION",
            help='Instead of purging now, run an RQ cron scheduler that enqueues the purge, e.g. "30 3 * * *".',
        )

    def handle(self, *args: Any, **options: Any) -> str:
        batch_size = options["batch_size"]
        if batch_size is not None and batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        if options["cron"]:
            return self._run_cron(options["cron"])
        if options["dry_run"]:
            result = tasks_purge(dry_run=True, batch_size=batch_size)
            for (status, queue), count in sorted(result.deleted.items()):
                self.stdout.write(f"{status:<10} {queue:<12} {count:>10}")
            return result.summary()

        show_bar = not options["no_progress"] and sys.stdout.isatty()
        if not show_bar:
            return tasks_purge(dry_run=False, batch_size=batch_size).summary()
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        with Progress("purging", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=True) as bar:
            bar_task = bar.add_task("purge", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(bar_task, completed=done, total=total)

            result = tasks_purge(dry_run=False, batch_size=batch_size, progress=progress)
        return result.summary()

    def _run_cron(self, expression: str) -> str:
        from croniter import croniter

        if not croniter.is_valid(expression):
            raise CommandError(f"--cron: {expression!r} is not a valid cron expression")
        scheduler = purge_cron_scheduler(cron=expression)
        self.stdout.write(f"enqueueing the retention purge on the default queue at {expression!r}")
        scheduler.start()
        return "cron scheduler stopped"
