"""Writing analyzed articles into a Notion database.

The client speaks Notion-Version 2025-09-03, where pages are created under a
database's *data source* rather than the database itself, so the data source id
is looked up once per client. Every request first takes a slot from the shared
``RedisRateLimiter`` (Notion allows about three requests per second per
integration, across all our workers). A 429 pauses that limiter for everybody
and is raised as ``NotionRateLimited``; the task system retries after the delay
instead of this module sleeping in a loop.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx
import notion_client
from notion_client.errors import HTTPResponseError, RequestTimeoutError

from ingestion.lib.ratelimit import RedisRateLimiter

NOTION_VERSION = "2025-09-03"
RICH_TEXT_LIMIT = 2000  # characters in one rich text object
CHILDREN_PER_REQUEST = 100  # blocks in one create or append request
SELECT_NAME_LIMIT = 100  # characters in a select option name
DEFAULT_RETRY_AFTER = 1.0

T = TypeVar("T")


class NotionError(Exception):
    """A failed Notion request, with Notion's own message.

    ``status`` and ``code`` come from Notion's error body when there is one.
    ``page_id`` is set when the error happened after a new page was created,
    so a caller can store it and update that page on retry instead of
    creating a duplicate.
    """

    def __init__(self, message: str, *, status: int | None = None, code: str = "", page_id: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.page_id = page_id


class NotionRateLimited(NotionError):
    """Notion answered 429 (or our own limiter is booked too far ahead); retry after ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: float, page_id: str | None = None):
        super().__init__(message, status=429, code="rate_limited", page_id=page_id)
        self.retry_after = retry_after


@dataclass
class NotionPage:
    id: str
    url: str


@dataclass
class NotionProperties:
    """Names of the database properties we fill (the user's database decides them)."""

    title: str = "Name"
    url: str = "URL"
    category: str = "Category"
    tags: str = "Tags"
    summary: str = "Summary"
    saved: str = "Saved"
    domain: str = "Domain"
    domain_type: str = "rich_text"  # or "select", whichever type the database's Domain property has


# --- blocks --------------------------------------------------------------------------------------------------------


def split_text(text: str, max_chars: int = RICH_TEXT_LIMIT) -> list[str]:
    """``text`` in pieces of at most ``max_chars``, cut at whitespace when a word boundary is near the limit."""
    pieces: list[str] = []
    rest = text.strip()
    while len(rest) > max_chars:
        cut = rest.rfind(" ", 0, max_chars + 1)
        if cut < max_chars // 2:
            cut = max(rest.rfind(sep, 0, max_chars + 1) for sep in ("\n", "\t"))
        if cut < max_chars // 2:
            cut = max_chars  # one enormous "word" (a URL, base64): cut it hard
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces


def _paragraphs(text: str) -> list[str]:
    # Extracted articles either separate paragraphs with blank lines (then single line breaks are wrapping)
    # or put one paragraph per line; handle both.
    text = text.replace("\r\n", "\n").strip()
    if not text:
        return []
    if re.search(r"\n\s*\n", text):
        parts = [" ".join(line.strip() for line in p.splitlines()) for p in re.split(r"\n\s*\n", text)]
    else:
        parts = text.split("\n")
    return [p.strip() for p in parts if p.strip()]


def _rich_text(content: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": {"content": content}}]


def _paragraph_block(content: str) -> dict[str, Any]:
    return {"object": "block", "type": "paragraph", "paragraph": {"rich_text": _rich_text(content)}}


def _heading_block(content: str) -> dict[str, Any]:
    return {"object": "block", "type": "heading_2", "heading_2": {"rich_text": _rich_text(content)}}


def text_to_blocks(summary: str, text: str, *, max_chars: int = RICH_TEXT_LIMIT) -> list[dict]:
    """Page body: a "Summary" heading and paragraphs, a divider, an "Article" heading and the article paragraphs.

    Notion rejects rich text longer than 2,000 characters, so long paragraphs
    become several paragraph blocks of at most ``max_chars`` characters each.
    """
    max_chars = min(max_chars, RICH_TEXT_LIMIT)
    blocks: list[dict[str, Any]] = [_heading_block("Summary")]
    blocks += [_paragraph_block(piece) for p in _paragraphs(summary) for piece in split_text(p, max_chars)]
    blocks.append({"object": "block", "type": "divider", "divider": {}})
    blocks.append(_heading_block("Article"))
    blocks += [_paragraph_block(piece) for p in _paragraphs(text) for piece in split_text(p, max_chars)]
    return blocks


def _option_name(value: str) -> str:
    # Notion refuses commas in select option names and caps their length.
    return " ".join(value.replace(",", " ").split())[:SELECT_NAME_LIMIT]


def _retry_after(headers: httpx.Headers | None) -> float:
    value = headers.get("retry-after") if headers is not None else None
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(value).timestamp() - datetime.now().timestamp())
            except (TypeError, ValueError):
                pass
    return DEFAULT_RETRY_AFTER


# --- client --------------------------------------------------------------------------------------------------------


class NotionClient:
    """Creates or updates one Notion page per article in a database."""

    def __init__(
        self,
        *,
        token: str,
        database_id: str,
        base_url: str = "https://api.notion.com",
        properties: NotionProperties | None = None,
        limiter: RedisRateLimiter | None = None,
        timeout: float = 30.0,
        limiter_timeout: float = 60.0,
    ) -> None:
        self.database_id = database_id
        self.properties = properties or NotionProperties()
        self.limiter = limiter
        self.limiter_timeout = limiter_timeout
        # The SDK's own retry loop would sleep inside the worker and bypass our shared limiter: switch it off.
        self.client = notion_client.Client(
            auth=token,
            base_url=base_url.rstrip("/"),
            notion_version=NOTION_VERSION,
            timeout_ms=int(timeout * 1000),
            retry=False,
        )
        self._data_source_id: str | None = None

    # One place where every request passes: the limiter, then error translation.
    def _call(self, request: Callable[[], T]) -> T:
        if self.limiter is not None:
            try:
                self.limiter.acquire(timeout=self.limiter_timeout)
            except TimeoutError as error:
                raise NotionRateLimited(
                    f"Notion rate limiter is booked more than {self.limiter_timeout:g} s ahead",
                    retry_after=self.limiter_timeout,
                ) from error
        try:
            return request()
        except HTTPResponseError as error:
            if error.status == 429:
                delay = _retry_after(error.headers)
                if self.limiter is not None:
                    self.limiter.pause(delay)
                raise NotionRateLimited(f"Notion rate limit (429), retry in {delay:g} s", retry_after=delay) from error
            code = error.code.value if hasattr(error.code, "value") else str(error.code)
            raise NotionError(
                f"Notion API error {error.status} {code}: {error}", status=error.status, code=code
            ) from error
        except RequestTimeoutError as error:
            raise NotionError("Notion request timed out", code="timeout") from error
        except httpx.HTTPError as error:
            raise NotionError(f"could not reach Notion: {error}", code="connection") from error

    def data_source_id(self) -> str:
        """The database's first data source (Notion-Version 2025-09-03 creates pages under data sources)."""
        if self._data_source_id is None:
            database = self._call(lambda: self.client.databases.retrieve(database_id=self.database_id))
            sources = database.get("data_sources") or []
            if not sources or not sources[0].get("id"):
                raise NotionError(f"Notion database {self.database_id} has no data source", code="no_data_source")
            self._data_source_id = sources[0]["id"]
        return self._data_source_id

    def build_properties(
        self, *, title: str, url: str, category: str, tags: list[str], summary: str, saved_at: datetime, domain: str
    ) -> dict[str, Any]:
        """Page property values in Notion's format, clipped to Notion's limits."""
        names = self.properties
        title_text = " ".join((title or url or "").split())[:RICH_TEXT_LIMIT]
        tag_options = list(dict.fromkeys(_option_name(t) for t in tags if _option_name(t)))
        domain_value: dict[str, Any]
        if names.domain_type == "select":
            domain_value = {"select": {"name": _option_name(domain)} if _option_name(domain) else None}
        else:
            domain_value = {"rich_text": _rich_text(domain[:RICH_TEXT_LIMIT]) if domain else []}
        return {
            names.title: {"title": _rich_text(title_text) if title_text else []},
            # A URL property longer than Notion's limit is rejected; an empty one is better than a failed page.
            names.url: {"url": url if url and len(url) <= RICH_TEXT_LIMIT else None},
            names.category: {"select": {"name": _option_name(category)} if _option_name(category) else None},
            names.tags: {"multi_select": [{"name": t} for t in tag_options]},
            names.summary: {"rich_text": _rich_text(summary[:RICH_TEXT_LIMIT]) if summary else []},
            names.saved: {"date": {"start": saved_at.isoformat()}},
            names.domain: domain_value,
        }

    def upsert_page(
        self,
        *,
        page_id: str | None,
        title: str,
        url: str,
        category: str,
        tags: list[str],
        summary: str,
        saved_at: datetime,
        domain: str,
        body_text: str,
    ) -> NotionPage:
        """Create the article's page, or replace the properties and content of ``page_id`` if it still exists.

        Updating keeps the page id (links to it stay valid) and never leaves a
        second copy; a page that was deleted or archived in Notion is created anew.
        """
        properties = self.build_properties(
            title=title, url=url, category=category, tags=tags, summary=summary, saved_at=saved_at, domain=domain
        )
        blocks = text_to_blocks(summary, body_text)
        if page_id:
            page = self._update_existing(page_id, properties, blocks)
            if page is not None:
                return page
        return self._create(properties, blocks)

    def _create(self, properties: dict[str, Any], blocks: list[dict[str, Any]]) -> NotionPage:
        parent = {"type": "data_source_id", "data_source_id": self.data_source_id()}
        first, rest = blocks[:CHILDREN_PER_REQUEST], blocks[CHILDREN_PER_REQUEST:]
        created = self._call(lambda: self.client.pages.create(parent=parent, properties=properties, children=first))
        page = NotionPage(id=created["id"], url=created.get("url", ""))
        try:
            self._append(page.id, rest)
        except NotionError as error:
            error.page_id = page.id
            raise
        return page

    def _update_existing(
        self, page_id: str, properties: dict[str, Any], blocks: list[dict[str, Any]]
    ) -> NotionPage | None:
        """The updated page, or None when the page is gone (deleted, archived, trashed)."""
        try:
            updated = self._call(lambda: self.client.pages.update(page_id=page_id, properties=properties))
        except NotionRateLimited:
            raise
        except NotionError as error:
            if error.status == 404 or (error.status == 400 and "archived" in str(error).lower()):
                return None
            raise
        if updated.get("archived") or updated.get("in_trash"):
            return None
        self._delete_children(page_id)
        self._append(page_id, blocks)
        return NotionPage(id=updated.get("id", page_id), url=updated.get("url", ""))

    def _delete_children(self, page_id: str) -> None:
        # Collect every id first: deleting while paginating would shift the cursor under us.
        child_ids: list[str] = []
        cursor: str | None = None
        while True:
            kwargs: dict[str, Any] = {"block_id": page_id, "page_size": 100}
            if cursor:
                kwargs["start_cursor"] = cursor
            listing = self._call(lambda kwargs=kwargs: self.client.blocks.children.list(**kwargs))
            child_ids += [block["id"] for block in listing.get("results", [])]
            cursor = listing.get("next_cursor")
            if not listing.get("has_more") or not cursor:
                break
        for block_id in child_ids:
            try:
                self._call(lambda block_id=block_id: self.client.blocks.delete(block_id=block_id))
            except NotionRateLimited:
                raise
            except NotionError as error:
                if error.status != 404:  # already gone is what we wanted
                    raise

    def _append(self, block_id: str, blocks: list[dict[str, Any]]) -> None:
        for start in range(0, len(blocks), CHILDREN_PER_REQUEST):
            chunk = blocks[start : start + CHILDREN_PER_REQUEST]
            self._call(lambda chunk=chunk: self.client.blocks.children.append(block_id=block_id, children=chunk))


__all__ = [
    "NOTION_VERSION",
    "NotionClient",
    "NotionError",
    "NotionPage",
    "NotionProperties",
    "NotionRateLimited",
    "text_to_blocks",
]
