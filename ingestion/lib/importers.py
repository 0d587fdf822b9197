"""Parsing of link import files: plain text, CSV, browser bookmarks and Pocket exports.

The parser only finds the links; it does not validate them beyond "looks like an
http(s) URL" (``normalize_url`` does that when the links are submitted). Nothing is
dropped silently: every entry is either a link or a line-numbered error.

Plain helper with no Django imports.
"""

from __future__ import annotations

import codecs
import csv
import html
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

IMPORT_FORMATS = ("text", "csv", "bookmarks", "pocket")
POCKET_HEADER = ("title", "url", "time_added", "tags", "status")

_URL_RE = re.compile(r"^https?://[^\s/?#]+\S*$", re.IGNORECASE)
_SCHEME_RE = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)
_BOOKMARKS_MARKERS = ("<!doctype netscape-bookmark-file", "<dt><a ")
# One token of a bookmarks file: a folder heading, the start or end of a folder list, or a link.
_BOOKMARK_TOKEN_RE = re.compile(
    r"<h3\b(?P<h3attrs>[^>]*)>(?P<folder>.*?)</h3\s*>|(?P<open><dl\b[^>]*>)|(?P<close></dl\s*>)|"
    r"<a\b(?P<attrs>[^>]*)>(?P<title>.*?)</a\s*>",
    re.IGNORECASE | re.DOTALL,
)
_ATTR_RE = re.compile(r"""([a-zA-Z_:][-a-zA-Z0-9_:.]*)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")
_TAG_SPLIT_RE = re.compile(r"[,;|]")
_HTML_TAG_RE = re.compile(r"<[^>]+>")

# Column names accepted (case-insensitively) in a generic CSV, besides the required ``url``.
_TITLE_COLUMNS = ("title", "name")
_TAGS_COLUMNS = ("tags", "tag", "labels")
_DATE_COLUMNS = ("added_at", "time_added", "created", "created_at", "date", "added")


class ImportFormatError(ValueError):
    """The file is in no format we can read; ``str(exc)`` says why."""


@dataclass
class ImportedLink:
    """One link found in an import file. ``added_at`` is ISO 8601 (UTC) when the file says when.

    ``folder`` is the bookmark folder path (``"Tech/Python"``), empty for other formats.
    """

    url: str
    title: str = ""
    tags: list[str] = field(default_factory=list)
    added_at: str | None = None
    folder: str = ""


@dataclass
class ImportResult:
    """What a file contained: its ``format``, the links, and one error per entry without a usable URL."""

    format: str
    links: list[ImportedLink] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def parse_import(data: bytes, *, filename: str = "") -> ImportResult:
    """Detect the format of an import file and return its links and line-numbered errors.

    Formats: browser bookmarks HTML (``NETSCAPE-Bookmark-file-1``), Pocket CSV export
    (``title,url,time_added,tags,status``), CSV with a ``url`` column, and plain text
    with one URL a line (blank lines and ``#`` comments skipped). UTF-8 (with or without
    BOM) is expected; anything else is read as latin-1. Raises ImportFormatError for
    an empty or binary file, or a ``.csv`` file without a ``url`` column.
    """
    text = _decode(data)
    if not text.strip():
        raise ImportFormatError("file is empty")
    if "\x00" in text:
        raise ImportFormatError("file is binary, not a text, CSV or bookmarks file")

    head = text[:4096].lstrip().lower()
    if head.startswith(_BOOKMARKS_MARKERS[0]) or _BOOKMARKS_MARKERS[1] in head:
        return _parse_bookmarks(text)

    first_line = text.lstrip("\r\n").split("\n", 1)[0]
    header = _csv_header(first_line)
    if header is not None:
        delimiter, columns = header
        if tuple(c.lower() for c in columns[: len(POCKET_HEADER)]) == POCKET_HEADER:
            return _parse_csv(text, delimiter, result_format="pocket")
        return _parse_csv(text, delimiter, result_format="csv")
    if filename.lower().endswith(".csv"):
        raise ImportFormatError("CSV file has no 'url' column in its header")
    return _parse_text(text)


def _decode(data: bytes) -> str:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # latin-1 maps every byte, so an old export still imports with every line intact.
        return data.decode("latin-1")


def _looks_like_url(value: str) -> str | None:
    """The URL if ``value`` looks like an http(s) URL (a bare ``www.`` host gets ``https://``), else None."""
    value = value.strip()
    if value.lower().startswith("www.") and " " not in value:
        value = "https://" + value
    return value if _URL_RE.match(value) else None


def _url_error(line: int, value: str) -> str:
    shown = value.strip()
    shown = shown if len(shown) <= 100 else shown[:100] + "..."
    if not shown:
        return f"line {line}: no URL"
    if _SCHEME_RE.match(shown) and not shown.lower().startswith(("http:", "https:")):
        return f"line {line}: not an http(s) URL: {shown!r}"
    return f"line {line}: not a URL: {shown!r}"


def _timestamp(value: str | None) -> str | None:
    """Unix seconds (as browsers and Pocket write them) or an ISO date -> ISO 8601 UTC."""
    value = (value or "").strip()
    if not value:
        return None
    if value.isdigit():
        seconds = int(value)
        # Some browsers write microseconds since the epoch.
        if seconds > 10**11:
            seconds //= 1_000_000 if seconds > 10**14 else 1000
        try:
            return datetime.fromtimestamp(seconds, tz=UTC).isoformat()
        except (OverflowError, OSError, ValueError):
            return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.isoformat()


def _split_tags(value: str | None) -> list[str]:
    tags: dict[str, None] = {}
    for tag in _TAG_SPLIT_RE.split(value or ""):
        tag = tag.strip()
        if tag:
            tags.setdefault(tag, None)
    return list(tags)


# --- Plain text ----------------------------------------------------------------------


def _parse_text(text: str) -> ImportResult:
    result = ImportResult(format="text")
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        url = _looks_like_url(stripped)
        if url is None:
            result.errors.append(_url_error(number, stripped))
        else:
            result.links.append(ImportedLink(url=url))
    return result


# --- CSV -----------------------------------------------------------------------------


def _csv_header(line: str) -> tuple[str, list[str]] | None:
    """(delimiter, columns) when ``line`` is a CSV header with a ``url`` column."""
    for delimiter in (",", ";", "\t"):
        if delimiter not in line:
            continue
        columns = [c.strip() for c in next(csv.reader([line], delimiter=delimiter), [])]
        if any(c.lower() == "url" for c in columns):
            return delimiter, columns
    if line.strip().lower() == "url":  # a one-column CSV
        return ",", ["url"]
    return None


def _pick(row: dict[str, str], names: tuple[str, ...]) -> str:
    for name in names:
        value = row.get(name)
        if value:
            return value
    return ""


def _parse_csv(text: str, delimiter: str, *, result_format: str) -> ImportResult:
    result = ImportResult(format=result_format)
    reader = csv.reader(io.StringIO(text.lstrip("\r\n"), newline=""), delimiter=delimiter)
    leading_blank = len(text) - len(text.lstrip("\r\n"))
    leading_lines = text[:leading_blank].count("\n")
    header = [c.strip().lower() for c in next(reader)]
    previous_line = reader.line_num
    for cells in _rows(reader):
        # Report the line the row starts on; a quoted field may span several lines.
        line = previous_line + 1 + leading_lines
        previous_line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        row = {name: (cells[i].strip() if i < len(cells) else "") for i, name in enumerate(header)}
        raw_url = row.get("url", "")
        url = _looks_like_url(raw_url)
        if url is None:
            result.errors.append(_url_error(line, raw_url))
            continue
        tags = _split_tags(_pick(row, _TAGS_COLUMNS))
        result.links.append(
            ImportedLink(
                url=url,
                title=_pick(row, _TITLE_COLUMNS),
                tags=tags,
                added_at=_timestamp(_pick(row, _DATE_COLUMNS)),
            )
        )
    return result


def _rows(reader: Iterator[list[str]]) -> Iterator[list[str]]:
    try:
        yield from reader
    except csv.Error as exc:
        raise ImportFormatError(f"CSV is malformed: {exc}") from None


# --- Bookmarks HTML ------------------------------------------------------------------


def _attributes(raw: str) -> dict[str, str]:
    attrs: dict[str, str] = {}
    for match in _ATTR_RE.finditer(raw):
        name = match.group(1).lower()
        value = next((g for g in match.groups()[1:] if g is not None), "")
        attrs[name] = html.unescape(value)
    return attrs


def _inner_text(fragment: str) -> str:
    return " ".join(html.unescape(_HTML_TAG_RE.sub("", fragment)).split())


def _parse_bookmarks(text: str) -> ImportResult:
    """Links of a NETSCAPE-Bookmark-file-1 export, with the folder path each one is in."""
    result = ImportResult(format="bookmarks")
    folders: list[str] = []  # folder names of the open <DL> lists (empty name for the root list)
    pending_folder: str | None = None  # the <H3> whose <DL> comes next
    line = 1
    position = 0
    for match in _BOOKMARK_TOKEN_RE.finditer(text):
        line += text.count("\n", position, match.start())
        position = match.start()
        if match.group("folder") is not None:
            pending_folder = _inner_text(match.group("folder"))
        elif match.group("open"):
            folders.append(pending_folder or "")
            pending_folder = None
        elif match.group("close"):
            if folders:
                folders.pop()
        else:
            attrs = _attributes(match.group("attrs"))
            title = _inner_text(match.group("title"))
            href = attrs.get("href", "")
            url = _looks_like_url(href)
            if url is None:
                reason = _url_error(line, href) if href.strip() else f"line {line}: bookmark {title[:100]!r} has no URL"
                result.errors.append(reason)
                continue
            result.links.append(
                ImportedLink(
                    url=url,
                    title=title,
                    tags=_split_tags(attrs.get("tags")),
                    added_at=_timestamp(attrs.get("add_date")),
                    folder="/".join(name for name in folders if name),
                )
            )
    return result
