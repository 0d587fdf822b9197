from __future__ import annotations

import dataclasses
import gzip
import json
import textwrap
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ingestion.lib.extract import EXTRACTORS, ExtractionError, extract_article
from ingestion.lib.fetch import detect_encoding

# Characters of article text shown in the readable output; --json always has all of it.
PREVIEW_CHARS = 600


class Command(BaseCommand):
    help = "Extract the article (title, text, authors, date, image, language) from saved .html or .html.gz files."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", metavar="PATH", help="An .html or .html.gz file.")
        parser.add_argument(
            "--extractor",
            choices=EXTRACTORS,
            default=settings.CONTENT_EXTRACTOR,
            help="Extractor to use (default: CONTENT_EXTRACTOR).",
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON object per file, one per line.")

    def handle(self, *args: Any, **options: Any) -> str:
        failures: list[str] = []
        for path in options["paths"]:
            try:
                html = read_html(path)
                article = extract_article(html, extractor=options["extractor"])
            except CommandError as exc:  # already names the path
                failures.append(str(exc))
                self.stderr.write(str(exc))
                continue
            except ExtractionError as exc:
                failures.append(f"{path}: {exc}")
                self.stderr.write(f"{path}: {exc}")
                continue
            record = {"path": path, **dataclasses.asdict(article)}
            if options["json"]:
                self.stdout.write(json.dumps(record, ensure_ascii=False))
            else:
                self.stdout.write(_readable(record))

        total = len(options["paths"])
        if failures:
            raise CommandError(f"{len(failures)} of {total} file(s) failed: " + "; ".join(failures))
        summary = f"extracted {total} file(s) with {options['extractor']}"
        if options["json"]:
            # Keep stdout pure JSON lines for pipes; the summary goes to stderr.
            self.stderr.write(summary)
            return ""
        return summary


def read_html(path: str) -> str:
    """The text of an .html or .html.gz file, decoded by its declared or detected charset."""
    file_path = Path(path)
    try:
        data = file_path.read_bytes()
    except FileNotFoundError:
        raise CommandError(f"{path}: no such file") from None
    except OSError as exc:
        raise CommandError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if file_path.suffix == ".gz" or data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise CommandError(f"{path}: not a valid gzip file: {exc}") from None
    return data.decode(detect_encoding(data, None), errors="replace")


def _readable(record: dict[str, Any]) -> str:
    text = record["text"]
    preview = text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS].rstrip() + " ..."
    lines = [
        f"== {record['path']}",
        f"title:     {record['title']}",
        f"authors:   {', '.join(record['authors']) or '-'}",
        f"published: {record['published'] or '-'}",
        f"image:     {record['image'] or '-'}",
        f"language:  {record['language'] or '-'}",
        f"text:      {len(text.split())} words",
        textwrap.indent(preview, "    "),
        "",
    ]
    return "\n".join(lines)
