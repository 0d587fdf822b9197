from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from monitoring.report import queue_table_lines
from monitoring.stats import system_stats
from tasks.supervisor import WorkerSupervisor


class Command(BaseCommand):
    help = "Start and supervise RQ workers for every queue (or one), or print worker and queue statistics."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--queue", help="Run only this queue.")
        parser.add_argument(
            "--workers", type=int, help="Number of workers for --queue (default: its configured count)."
        )
        parser.add_argument("--stats", action="store_true", help="Print per-queue statistics and exit.")
        parser.add_argument(
            "--max-seconds", type=float, default=None, help="Stop by itself after this many seconds (for tests)."
        )

    def handle(self, *args, **options) -> str:
        if options["stats"]:
            return self._print_stats()
        queue = options["queue"]
        workers = options["workers"]
        if workers is not None and not queue:
            raise CommandError("--workers needs --queue")
        if workers is not None and workers < 1:
            raise CommandError("--workers must be at least 1")
        if queue:
            if queue not in settings.QUEUE_NAMES:
                raise CommandError(f"--queue {queue!r} is not a configured queue ({', '.join(settings.QUEUE_NAMES)})")
            plan = {queue: workers if workers is not None else max(1, settings.WORKER_COUNTS[queue])}
        else:
            plan = dict(settings.WORKER_COUNTS)
        if not any(plan.values()):
            raise CommandError("no workers to start: every WORKER_COUNT_* is 0")
        supervisor = WorkerSupervisor(plan, out=lambda line: self.stdout.write(line))
        summary = ", ".join(f"{q} x{n}" for q, n in supervisor.plan.items())
        self.stdout.write(f"supervising {len(supervisor.slots)} worker(s): {summary}")
        supervisor.run(max_seconds=options["max_seconds"])
        return f"stopped {len(supervisor.slots)} worker(s)"

    def _print_stats(self) -> str:
        # The same statistics function and table as `monitor --once`, so both print the same figures.
        stats = system_stats()
        for line in queue_table_lines(stats):
            self.stdout.write(line)
        total = sum(row["workers"] or 0 for row in stats["queues"].values())
        return f"{total} worker(s) on {len(stats['queues'])} queue(s)"
