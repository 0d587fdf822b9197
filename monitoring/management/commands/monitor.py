from __future__ import annotations

import json
import time

from django.core.management.base import BaseCommand, CommandError
from rich.console import Console
from rich.live import Live

from monitoring.health import health_report
from monitoring.report import dashboard
from monitoring.stats import system_stats


class Command(BaseCommand):
    help = (
        "Live terminal dashboard of queues, workers, failures and health (--once for a snapshot, --json for scripts)."
    )

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--interval", type=float, default=2.0, help="Seconds between refreshes (default 2).")
        parser.add_argument("--once", action="store_true", help="Print one snapshot and exit.")
        parser.add_argument("--json", action="store_true", help="Print the statistics as JSON and exit.")

    def handle(self, *args, **options) -> str:
        interval = options["interval"]
        if interval <= 0:
            raise CommandError("--interval must be a positive number of seconds")
        if options["json"]:
            stats = system_stats()
            self.stdout.write(json.dumps({**stats, "health": health_report(stats)}, indent=2, default=str))
            return ""
        # Colour only on a real terminal; redirected output stays plain text.
        console = Console(file=self.stdout, width=160 if not self.stdout.isatty() else None)
        if options["once"]:
            stats = system_stats()
            report = health_report(stats)
            console.print(dashboard(stats, report))
            return f"overall {report['status']}"
        return self._live(console, interval)

    def _live(self, console: Console, interval: float) -> str:
        def screen():  # noqa: ANN202
            stats = system_stats()
            return dashboard(stats, health_report(stats))

        try:
            with Live(screen(), console=console, auto_refresh=False, screen=False) as live:
                while True:
                    time.sleep(interval)
                    live.update(screen(), refresh=True)
        except KeyboardInterrupt:
            # Ctrl-C is how an operator leaves the dashboard: no traceback.
            return "stopped"
