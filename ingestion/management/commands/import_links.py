from __future__ import annotations

from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ingestion.lib.importers import ImportFormatError
from ingestion.services import links_import

# How many errors the summary prints; the count covers all of them.
ERRORS_SHOWN = 5


class Command(BaseCommand):
    help = "Import links from a text, CSV, bookmarks HTML or Pocket CSV file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="The file to import.")
        parser.add_argument("--dry-run", action="store_true", help="Report what would happen; write nothing.")
        parser.add_argument("--no-process", action="store_true", help="Add the links without queueing parsing.")
        parser.add_argument("--user", help="Username recorded as the submitter.")
        parser.add_argument("--batch-size", type=int, default=1000, help="Links written per transaction.")

    def handle(self, *args: Any, **options: Any) -> str:
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"file {options['file']!r} does not exist or is not a file")
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        user = None
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"--user {options['user']!r}: no such user")
        params = {
            "data": path.read_bytes(),
            "filename": path.name,
            "user": user,
            "dry_run": options["dry_run"],
            "process": not options["no_process"],
            "batch_size": options["batch_size"],
        }
        try:
            if self.stdout.isatty():
                summary = self._import_with_progress(params)
            else:
                summary = links_import(**params)
        except ImportFormatError as exc:
            raise CommandError(f"{path}: {exc}") from exc

        for error in summary["errors"][:ERRORS_SHOWN]:
            self.stdout.write(f"  {error}")
        if summary["error_count"] > ERRORS_SHOWN:
            self.stdout.write(f"  ... and {summary['error_count'] - ERRORS_SHOWN} more error(s)")
        prefix = "dry run: would create" if summary["dry_run"] else "created"
        return (
            f"{path.name} ({summary['format']}): {prefix} {summary['created']}, "
            f"duplicate {summary['duplicate']}, invalid {summary['invalid']}"
        )

    def _import_with_progress(self, params: dict[str, Any]) -> dict[str, Any]:
        columns = [TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
        with Progress(*columns, transient=True) as progress:
            bar = progress.add_task("import", total=None)

            def advance(done: int, total: int) -> None:
                progress.update(bar, completed=done, total=total)

            return links_import(**params, progress=advance)
