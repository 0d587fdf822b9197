"""Writes for links and the pipeline parse -> ai -> notion.

Every stage is a service that a job, an API view and an admin action call
alike. A stage that succeeds creates the next stage's task through
``tasks.services``, which pushes it to Redis only after the transaction
commits. Each stage is idempotent: re-parsing text whose hash did not change
stops before the AI step, and a link that has a Notion page updates that page.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from ingestion.lib.ai import PROMPT_VERSION, UNCATEGORIZED, AIError, AIResult, CategoryInfo, make_backend
from ingestion.lib.extract import ExtractionError, extract_article
from ingestion.lib.fetch import FetchError, fetch_url
from ingestion.lib.importers import ImportResult, parse_import
from ingestion.lib.notion import NotionClient, NotionError, NotionProperties
from ingestion.lib.ratelimit import RedisRateLimiter
from ingestion.lib.urls import url_domain
from ingestion.models import AIResultCache, Category, Link, LinkStatus, Tag
from kbmanager.queues import get_redis
from tasks.models import Task
from tasks.services import TaskSpec, task_create, tasks_create_bulk

logger = logging.getLogger(__name__)

PARSE_KIND = "ingestion.parse_link"
SUMMARIZE_KIND = "ingestion.summarize_link"
NOTION_KIND = "ingestion.sync_notion"
STAGE_KINDS = {"parse": PARSE_KIND, "ai": SUMMARIZE_KIND, "notion": NOTION_KIND}
NOTION_LIMITER_KEY = "kbmanager:notion"
# The AI prompt lists existing tags so the model reuses them; the most used ones are enough.
EXISTING_TAGS_IN_PROMPT = 200
# How many error messages an import summary carries (the counts cover all of them).
IMPORT_ERRORS_KEPT = 100


class IngestionError(Exception):
    """Base class for refusals of the ingestion services."""


class LinksNotFound(IngestionError):
    def __init__(self, link_ids: Sequence[int]) -> None:
        self.link_ids = list(link_ids)
        super().__init__(f"unknown link ids: {', '.join(str(i) for i in self.link_ids)}")


class NotionNotConfigured(IngestionError):
    def __init__(self) -> None:
        super().__init__("Notion is not configured (set NOTION_TOKEN and NOTION_DATABASE_ID)")


class SyncStageCapExceeded(IngestionError):
    def __init__(self, count: int, cap: int) -> None:
        self.count, self.cap = count, cap
        super().__init__(
            f"at most {cap} links can be processed synchronously (got {count}); "
            'send "async": true to queue them instead'
        )


class LinkNotReady(IngestionError):
    """The link lacks what the stage needs (no text to summarize, no summary to sync)."""


# Errors a stage run in-process reports per link instead of raising.
STAGE_ERRORS = (IngestionError, FetchError, ExtractionError, AIError, NotionError)


def notion_configured() -> bool:
    """Notion is on when both the token and the database id are set (read at call time, for tests)."""
    return bool(settings.NOTION_TOKEN and settings.NOTION_DATABASE_ID)


def content_hash_of(text: str) -> str:
    """sha256 of the text with whitespace collapsed, so layout-only changes do not count as new content."""
    return hashlib.sha256(" ".join(text.split()).encode()).hexdigest()


# --- submitting ----------------------------------------------------------------


@dataclass(frozen=True)
class SubmittedLink:
    """One URL to add, with what an import file may know about it."""

    url: Any
    title: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)


@dataclass
class _SubmissionPlan:
    items: Sequence[SubmittedLink]
    outcomes: list[dict[str, Any] | None]
    normalized: list[str | None]
    first_index: dict[str, int]
    existing: dict[str, int]

    @property
    def new_urls(self) -> list[str]:
        return [url for url in self.first_index if url not in self.existing]


def _plan_submission(items: Sequence[SubmittedLink], *, seen: set[str] | None = None) -> _SubmissionPlan:
    """Normalize every URL and find duplicates in the batch, in ``seen`` and in the database (one query)."""
    outcomes: list[dict[str, Any] | None] = [None] * len(items)
    normalized: list[str | None] = [None] * len(items)
    first_index: dict[str, int] = {}
    for index, item in enumerate(items):
        if not isinstance(item.url, str):
            outcomes[index] = {"url": item.url, "status": "invalid", "reason": "not a string"}
            continue
        try:
            url = Link.normalize(item.url)
        except ValueError as exc:
            outcomes[index] = {"url": item.url, "status": "invalid", "reason": str(exc) or "invalid URL"}
            continue
        normalized[index] = url
        if seen is not None and url in seen:
            outcomes[index] = {"url": item.url, "status": "duplicate", "id": None}
            continue
        first_index.setdefault(url, index)
    existing = dict(Link.objects.filter(normalized_url__in=list(first_index)).values_list("normalized_url", "id"))
    return _SubmissionPlan(items, outcomes, normalized, first_index, existing)


# Columns that differ between the rows of one submission; every other column gets its model default.
_SUBMIT_COLUMNS = ("url", "normalized_url", "domain", "title")


def _insert_links(links: Sequence[Link]) -> dict[str, int]:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING: new rows' ids; a URL another request inserted first is absent.

    ``bulk_create(ignore_conflicts=True)`` cannot tell which rows were inserted,
    and a plain ``bulk_create`` fails the whole batch when a concurrent request
    adds the same URL. The varying columns travel as one array each (``unnest``),
    which keeps a thousand rows to a handful of parameters; the others are the
    model's defaults, taken from the first row.
    """
    if not links:
        return {}
    quote = connection.ops.quote_name
    fields = [f for f in Link._meta.concrete_fields if not f.primary_key]
    varying = [f for f in fields if f.name in _SUBMIT_COLUMNS]
    constant = [f for f in fields if f.name not in _SUBMIT_COLUMNS]
    sample = links[0]
    # In the order of the placeholders: the constants in the SELECT list, then the arrays in FROM.
    params: list[Any] = [f.get_db_prep_save(f.pre_save(sample, True), connection) for f in constant]
    params += [[getattr(link, f.attname) for link in links] for f in varying]
    aliases = [f"c{i}" for i in range(len(varying))]
    select = [f"u.{alias}" for alias in aliases] + [f"%s::{f.db_type(connection)}" for f in constant]
    unnest = ", ".join("%s::text[]" for _ in varying)
    sql = (
        f"INSERT INTO {quote(Link._meta.db_table)} ({', '.join(quote(f.column) for f in varying + constant)}) "
        f"SELECT {', '.join(select)} FROM unnest({unnest}) AS u({', '.join(aliases)}) "
        "ON CONFLICT (normalized_url) DO NOTHING RETURNING id, normalized_url"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {url: link_id for link_id, url in cursor.fetchall()}


def _clean_tag(name: Any) -> str:
    return " ".join(str(name).split()).lower()[:100]


def _tags_by_name(names: Iterable[str]) -> dict[str, int]:
    """Ids of the tags with these (already cleaned) names, creating the missing ones in one statement."""
    wanted = {name for name in names if name}
    if not wanted:
        return {}
    Tag.objects.bulk_create([Tag(name=name) for name in wanted], ignore_conflicts=True)
    return dict(Tag.objects.filter(name__in=wanted).values_list("name", "id"))


def _attach_import_tags(link_tags: dict[int, tuple[str, ...]]) -> None:
    cleaned = {link_id: {_clean_tag(t) for t in tags} - {""} for link_id, tags in link_tags.items()}
    tag_ids = _tags_by_name(name for names in cleaned.values() for name in names)
    through = Link.tags.through
    through.objects.bulk_create(
        [through(link_id=link_id, tag_id=tag_ids[name]) for link_id, names in cleaned.items() for name in names],
        ignore_conflicts=True,
        batch_size=5000,
    )


def _submit_items(*, items: Sequence[SubmittedLink], user: Any, process: bool) -> list[dict[str, Any]]:
    plan = _plan_submission(items)
    submitter_id = user.pk if user is not None and getattr(user, "is_authenticated", False) else None
    now = timezone.now()
    new_links = []
    for url in plan.new_urls:
        item = plan.items[plan.first_index[url]]
        new_links.append(
            Link(
                url=item.url.strip(),
                normalized_url=url,
                domain=url_domain(url)[:255],
                title=(item.title or "").strip(),
                submitted_by_id=submitter_id,
                created_at=now,
            )
        )
    task_ids: dict[int, str] = {}
    with transaction.atomic():
        inserted = _insert_links(new_links)
        lost_race = [link.normalized_url for link in new_links if link.normalized_url not in inserted]
        if lost_race:
            plan.existing.update(Link.objects.filter(normalized_url__in=lost_race).values_list("normalized_url", "id"))
        import_tags = {
            inserted[url]: tuple(plan.items[plan.first_index[url]].tags)
            for url in inserted
            if plan.items[plan.first_index[url]].tags
        }
        if import_tags:
            _attach_import_tags(import_tags)
        if process and inserted:
            specs = [TaskSpec(kind=PARSE_KIND, args={"link_id": i}, link_id=i) for i in inserted.values()]
            task_ids = {task.link_id: str(task.id) for task in tasks_create_bulk(specs=specs)}

    results: list[dict[str, Any]] = []
    for index, item in enumerate(plan.items):
        outcome = plan.outcomes[index]
        if outcome is None:
            url = plan.normalized[index]
            if url in inserted and plan.first_index[url] == index:
                link_id = inserted[url]
                outcome = {"url": item.url, "status": "created", "id": link_id, "task_id": task_ids.get(link_id)}
            else:
                link_id = inserted.get(url) or plan.existing[url]
                outcome = {"url": item.url, "status": "duplicate", "id": link_id}
        results.append(outcome)
    return results


def links_submit(*, urls: Sequence[Any], user: Any = None, process: bool = True) -> list[dict[str, Any]]:
    """Add links; one outcome per URL, in order: created (id, task_id), duplicate (id) or invalid (reason).

    Duplicates are found against the database and within ``urls`` by the
    normalized URL. A duplicate of a failed link is reported as a duplicate and
    not re-run: re-parsing is an explicit operator action. With ``process`` a
    parse task is created for every new link, enqueued after commit.
    """
    return _submit_items(items=[SubmittedLink(url=url) for url in urls], user=user, process=process)


def links_import(
    *,
    data: bytes,
    filename: str = "",
    user: Any = None,
    dry_run: bool = False,
    process: bool = True,
    batch_size: int = 1000,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Import a text, CSV, bookmarks HTML or Pocket export; returns format, counts and the first errors.

    Batches commit one at a time, so a large file is visible as it goes and an
    interrupted import can simply be run again (what was added is a duplicate).
    ``dry_run`` reports what would happen without writing. Raises
    ``ImportFormatError`` for a file that is no known format.
    """
    parsed: ImportResult = parse_import(data, filename=filename)
    items = [
        SubmittedLink(url=entry.url, title=entry.title or "", tags=tuple(entry.tags or ())) for entry in parsed.links
    ]
    # Entries the parser could not read as a link are invalid too, so the counts cover every entry.
    counts = {"created": 0, "duplicate": 0, "invalid": len(parsed.errors)}
    errors = [str(error) for error in parsed.errors]
    error_count = len(errors)
    seen: set[str] = set()
    total = len(items)
    for start in range(0, total, max(1, batch_size)):
        batch = items[start : start + batch_size]
        if dry_run:
            outcomes = _preview_items(batch, seen=seen)
        else:
            outcomes = _submit_items(items=batch, user=user, process=process)
        for offset, outcome in enumerate(outcomes):
            counts[outcome["status"]] += 1
            if outcome["status"] == "invalid":
                error_count += 1
                errors.append(f"entry {start + offset + 1} ({str(outcome['url'])[:200]}): {outcome['reason']}")
        if progress is not None:
            progress(min(start + len(batch), total), total)
    return {
        "format": parsed.format,
        "dry_run": dry_run,
        "total": total,
        **counts,
        "error_count": error_count,
        "errors": errors[:IMPORT_ERRORS_KEPT],
    }


def _preview_items(items: Sequence[SubmittedLink], *, seen: set[str]) -> list[dict[str, Any]]:
    """What ``_submit_items`` would answer, without writing; ``seen`` carries new URLs across batches."""
    plan = _plan_submission(items, seen=seen)
    outcomes = []
    for index, item in enumerate(items):
        outcome = plan.outcomes[index]
        if outcome is None:
            url = plan.normalized[index]
            if url in plan.existing:
                outcome = {"url": item.url, "status": "duplicate", "id": plan.existing[url]}
            elif plan.first_index[url] == index:
                outcome = {"url": item.url, "status": "created", "id": None, "task_id": None}
            else:
                outcome = {"url": item.url, "status": "duplicate", "id": None}
        outcomes.append(outcome)
    seen.update(plan.new_urls)
    return outcomes


# --- failures --------------------------------------------------------------------


def link_record_error(*, link_id: int, message: str, failed: bool) -> None:
    """Keep the latest error on the link; ``failed`` also marks it failed (a permanent or final error)."""
    values: dict[str, Any] = {"last_error": message[:10000]}
    if failed:
        values["status"] = LinkStatus.FAILED
    Link.objects.filter(id=link_id).update(**values)


def _fail(link_id: int, exc: Exception, *, permanent: bool, final: bool) -> None:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    link_record_error(link_id=link_id, message=message, failed=permanent or final)


# --- parse -----------------------------------------------------------------------


def _published_at(value: str | None) -> datetime | None:
    if not value:
        return None
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value[:10])
        if day is None:
            return None
        moment = datetime(day.year, day.month, day.day)
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    return moment


def link_parse(*, link_id: int, force: bool = False, final_attempt: bool = True) -> dict[str, Any]:
    """Fetch and extract the link's article, then hand it to the AI step unless nothing changed.

    When the text's hash equals the one the current summary was made from, the
    link goes back to ready (or synced) and no AI task is created, unless
    ``force``. Fetch and extraction errors are recorded on the link (failed
    when permanent or ``final_attempt``) and re-raised for the caller to map.
    Raises ``Link.DoesNotExist`` if the link is gone.
    """
    link = Link.objects.get(id=link_id)
    Link.objects.filter(id=link_id).update(status=LinkStatus.PARSING)
    try:
        page = fetch_url(
            link.normalized_url,
            allowed_hosts=tuple(settings.FETCH_ALLOWED_HOSTS),
            max_bytes=settings.FETCH_MAX_BYTES,
            connect_timeout=settings.FETCH_CONNECT_TIMEOUT,
            total_timeout=settings.FETCH_TIMEOUT,
            max_redirects=settings.FETCH_MAX_REDIRECTS,
            user_agent=settings.FETCH_USER_AGENT,
        )
        article = extract_article(page.html, url=page.final_url, extractor=settings.CONTENT_EXTRACTOR)
    except FetchError as exc:
        _fail(link_id, exc, permanent=exc.permanent, final=final_attempt)
        raise
    except ExtractionError as exc:
        _fail(link_id, exc, permanent=True, final=True)
        raise

    text = article.text or ""
    new_hash = content_hash_of(text)
    unchanged = link.summary_is_current and link.ai_content_hash == new_hash
    values: dict[str, Any] = {
        "title": (article.title or link.title or "").strip(),
        "authors": list(article.authors or []),
        "published_at": _published_at(article.published),
        "top_image": article.image or "",
        "language": article.language or "",
        "text": text,
        "word_count": len(text.split()),
        "final_url": page.final_url,
        "domain": (url_domain(page.final_url) or link.domain)[:255],
        "content_hash": new_hash,
        "parsed_at": timezone.now(),
        "last_error": "",
    }
    with transaction.atomic():
        if unchanged and not force:
            values["status"] = LinkStatus.SYNCED if link.notion_page_id else LinkStatus.READY
            if not Link.objects.filter(id=link_id).update(**values):
                raise Link.DoesNotExist(f"link {link_id} was deleted while it was parsed")
            return {"link_id": link_id, "content_hash": new_hash, "changed": False, "next": None}
        values["status"] = LinkStatus.PARSED
        if not Link.objects.filter(id=link_id).update(**values):
            raise Link.DoesNotExist(f"link {link_id} was deleted while it was parsed")
        task = task_create(kind=SUMMARIZE_KIND, args={"link_id": link_id, "force": force}, link_id=link_id)
    return {"link_id": link_id, "content_hash": new_hash, "changed": not unchanged, "next": str(task.id)}


# --- summarize -------------------------------------------------------------------


_ai_backends: dict[tuple[Any, ...], Any] = {}


def _ai_backend() -> Any:
    """The configured backend, built once per configuration and process (building an SDK client is not free)."""
    config = {
        "backend": settings.AI_BACKEND,
        "api_key": settings.OPENAI_API_KEY,
        "base_url": settings.OPENAI_BASE_URL,
        "model": settings.OPENAI_MODEL,
        "timeout": settings.AI_REQUEST_TIMEOUT,
        "input_char_budget": settings.AI_INPUT_CHAR_BUDGET,
    }
    key = tuple(config.values())
    backend = _ai_backends.get(key)
    if backend is None:
        backend = _ai_backends[key] = make_backend(**config)
    return backend


_WARM_UP_COMPLETION = {
    "id": "warm-up",
    "object": "chat.completion",
    "created": 0,
    "model": "warm-up",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "{}"}, "finish_reason": "stop"}],
}


def pipeline_warm_up() -> None:
    """Do, once in a worker's parent process, the set-up every forked work-horse would otherwise repeat.

    Workers fork a work-horse per job, so whatever a library builds lazily on
    first use is rebuilt for every job: the openai SDK's clients, request
    headers and response models cost about half a second, more than a fast
    model takes to answer. This builds the configured AI backend and Notion
    client, and runs one chat completion and one extraction entirely in
    memory (a mock transport, no network), so horses inherit them ready.
    """
    _ai_backend()
    if notion_configured():
        _notion_client()
    paragraph = "A short paragraph to extract. " * 20
    extract_article(
        f"<html><body><article><h1>Warm-up</h1><p>{paragraph}</p></article></body></html>",
        url="http://warm-up.invalid/",
        extractor=settings.CONTENT_EXTRACTOR,
    )
    if settings.AI_BACKEND == "openai":
        import importlib

        import openai

        # The SDK's HTTP library is whatever its default client subclasses (httpx or a fork of it).
        http = importlib.import_module(openai.DefaultHttpxClient.__mro__[1].__module__.split(".")[0])
        transport = http.MockTransport(lambda request: http.Response(200, json=_WARM_UP_COMPLETION))
        client = openai.OpenAI(
            api_key="warm-up",
            base_url="http://warm-up.invalid/v1",
            http_client=openai.DefaultHttpxClient(transport=transport),
            max_retries=0,
        )
        client.chat.completions.create(
            model="warm-up", messages=[{"role": "user", "content": "warm up"}], response_format={"type": "json_object"}
        )


def _result_to_json(result: AIResult) -> dict[str, Any]:
    return {
        "summary": result.summary,
        "category": result.category,
        "tags": list(result.tags),
        "language": result.language,
        "model": result.model,
    }


def _existing_tag_names() -> list[str]:
    return list(
        Tag.objects.annotate(uses=Count("links"))
        .order_by("-uses", "name")
        .values_list("name", flat=True)[:EXISTING_TAGS_IN_PROMPT]
    )


def _prompt_version(categories: Sequence[CategoryInfo]) -> str:
    """PROMPT_VERSION plus a fingerprint of the categories the model chooses from.

    The category is part of the answer, so an answer given for another category
    table must not be reused: adding, renaming or redescribing a category asks
    the model again. Existing tags are left out on purpose: they change with
    every link, and the prompt only asks to prefer them.
    """
    # "Uncategorized" is always offered, whether or not its row exists yet (the first
    # answer that needs it creates it).
    table = json.dumps(
        [[c.name, c.description, c.keywords] for c in categories if c.name != UNCATEGORIZED], ensure_ascii=False
    )
    return f"{PROMPT_VERSION}:{hashlib.sha256(table.encode()).hexdigest()[:16]}"


def link_summarize(*, link_id: int, force: bool = False, final_attempt: bool = True) -> dict[str, Any]:
    """Summarize, categorize and tag the link's text, then queue the Notion sync when Notion is configured.

    Answers are cached in ``AIResultCache`` by (content hash, model, prompt
    version and category table; see ``_prompt_version``); ``force`` asks the
    backend again and refreshes the cache.
    A link whose summary already matches its text is left alone unless
    ``force``. Raises ``LinkNotReady`` for a link with no parsed text.
    """
    link = Link.objects.get(id=link_id)
    if not link.text.strip():
        error = LinkNotReady(f"link {link_id} has no parsed text; run the parse step first")
        _fail(link_id, error, permanent=True, final=True)
        raise error
    if link.summary_is_current and not force:
        return {"link_id": link_id, "skipped": "summary is up to date"}

    Link.objects.filter(id=link_id).update(status=LinkStatus.SUMMARIZING)
    backend = _ai_backend()
    categories = [
        CategoryInfo(name=c.name, description=c.description, keywords=list(c.keywords or []))
        for c in Category.objects.order_by("name")
    ]
    prompt_version = _prompt_version(categories)
    cached = None
    if not force:
        cached = AIResultCache.objects.filter(
            content_hash=link.content_hash, model=backend.model, prompt_version=prompt_version
        ).first()
    if cached is not None:
        answer = cached.result
    else:
        try:
            result = backend.analyze(
                title=link.title, text=link.text, categories=categories, existing_tags=_existing_tag_names()
            )
        except AIError as exc:  # rate limits included: the job turns those into a delayed retry
            _fail(link_id, exc, permanent=exc.permanent, final=final_attempt)
            raise
        answer = _result_to_json(result)
        # One upsert statement: two workers may summarize the same text at once.
        AIResultCache.objects.bulk_create(
            [
                AIResultCache(
                    content_hash=link.content_hash, model=backend.model, prompt_version=prompt_version, result=answer
                )
            ],
            update_conflicts=True,
            unique_fields=["content_hash", "model", "prompt_version"],
            update_fields=["result", "created_at"],
        )

    category_name = (answer.get("category") or "").strip()
    category = Category.objects.filter(name__iexact=category_name).first() if category_name else None
    if category is None:
        category, _ = Category.objects.get_or_create(name=UNCATEGORIZED)
    tag_names = list(dict.fromkeys(_clean_tag(t) for t in answer.get("tags") or []))
    tag_names = [name for name in tag_names if name]
    next_task = None
    with transaction.atomic():
        updated = Link.objects.filter(id=link_id, content_hash=link.content_hash).update(
            summary=answer.get("summary") or "",
            category=category,
            language=link.language or answer.get("language") or "",
            ai_content_hash=link.content_hash,
            summarized_at=timezone.now(),
            status=LinkStatus.READY,
            last_error="",
        )
        if not updated:
            # Deleted, or re-parsed to new text meanwhile: that parse queued its own AI step.
            return {"link_id": link_id, "skipped": "link changed or was deleted while it was summarized"}
        tag_ids = _tags_by_name(tag_names)
        link.tags.set([tag_ids[name] for name in tag_names])
        if notion_configured():
            next_task = task_create(kind=NOTION_KIND, args={"link_id": link_id}, link_id=link_id)
    return {
        "link_id": link_id,
        "category": category.name,
        "tags": tag_names,
        "cached": cached is not None,
        "model": backend.model,
        "next": str(next_task.id) if next_task else None,
    }


# --- notion ----------------------------------------------------------------------

_notion_clients: dict[tuple[Any, ...], NotionClient] = {}


def _notion_client() -> NotionClient:
    """One client per configuration and process, so the database's data source is resolved once."""
    properties = NotionProperties(
        title=settings.NOTION_PROPERTY_TITLE,
        url=settings.NOTION_PROPERTY_URL,
        category=settings.NOTION_PROPERTY_CATEGORY,
        tags=settings.NOTION_PROPERTY_TAGS,
        summary=settings.NOTION_PROPERTY_SUMMARY,
        saved=settings.NOTION_PROPERTY_SAVED,
        domain=settings.NOTION_PROPERTY_DOMAIN,
    )
    # NotionProperties is a mutable dataclass (unhashable), so the key holds its values.
    key = (
        settings.NOTION_TOKEN,
        settings.NOTION_DATABASE_ID,
        settings.NOTION_BASE_URL,
        settings.NOTION_RATE_LIMIT,
        *vars(properties).values(),
    )
    client = _notion_clients.get(key)
    if client is None:
        limiter = RedisRateLimiter(get_redis(), NOTION_LIMITER_KEY, settings.NOTION_RATE_LIMIT)
        client = NotionClient(
            token=settings.NOTION_TOKEN,
            database_id=settings.NOTION_DATABASE_ID,
            base_url=settings.NOTION_BASE_URL,
            properties=properties,
            limiter=limiter,
            # Below the queue's job timeout, so a slow Notion is a clean, retried failure.
            timeout=max(5.0, min(30.0, settings.QUEUE_TIMEOUTS["notion"] - 10)),
        )
        _notion_clients[key] = client
    if getattr(client, "_data_source_id", "") is None:
        # Work-horses are forked per job, so the client's own memo of the database's data
        # source dies with each job and every sync would pay an extra (rate-limited) request
        # to look it up again. The id never changes for a database: share it through Redis.
        client._data_source_id = cache.get(_data_source_cache_key())
    return client


def _data_source_cache_key() -> str:
    return f"ingestion:notion-data-source:{settings.NOTION_DATABASE_ID}"


def _remember_data_source(client: NotionClient) -> None:
    source = getattr(client, "_data_source_id", None)
    if source:
        cache.set(_data_source_cache_key(), source, timeout=24 * 3600)


def link_sync_notion(*, link_id: int, final_attempt: bool = True) -> dict[str, Any]:
    """Create the link's Notion page, or update the one it has; store its id and URL.

    The link's row is locked while the page is written, so two syncs of one
    link (a retry and an admin click) cannot both create a page.
    """
    if not notion_configured():
        raise NotionNotConfigured()
    client = _notion_client()
    with transaction.atomic():
        link = Link.objects.select_for_update(of=("self",)).select_related("category").get(id=link_id)
        if not link.summary:
            error = LinkNotReady(f"link {link_id} has no summary yet; run the AI step first")
            _fail(link_id, error, permanent=True, final=True)
            raise error
        tags = list(link.tags.order_by("name").values_list("name", flat=True))
        try:
            page = client.upsert_page(
                page_id=link.notion_page_id or None,
                title=link.title or link.normalized_url,
                url=link.final_url or link.normalized_url,
                category=link.category.name if link.category else "",
                tags=tags,
                summary=link.summary,
                saved_at=link.created_at,
                domain=link.domain,
                body_text=link.text,
            )
        except NotionError as exc:  # rate limits included: the job turns those into a delayed retry
            failure = exc
            transaction.set_rollback(True)
        else:
            failure = None
            _remember_data_source(client)
            Link.objects.filter(id=link_id).update(
                notion_page_id=page.id,
                notion_url=page.url or "",
                status=LinkStatus.SYNCED,
                synced_at=timezone.now(),
                last_error="",
            )
    if failure is not None:
        # Recorded outside the rolled-back transaction so the error survives.
        if failure.page_id:
            # The page was created before the error: keep it so the retry updates it rather than adding a second.
            Link.objects.filter(id=link_id).update(notion_page_id=failure.page_id)
        if failure.status == 404:
            # Perhaps the remembered data source is stale; look it up again on the retry.
            cache.delete(_data_source_cache_key())
        _fail(link_id, failure, permanent=False, final=final_attempt)
        raise failure
    created = not link.notion_page_id
    return {"link_id": link_id, "page_id": page.id, "created": created}


# --- stages for the API and the admin ---------------------------------------------


def _existing_ids(link_ids: Iterable[int]) -> list[int]:
    ids = list(dict.fromkeys(int(i) for i in link_ids))
    found = set(Link.objects.filter(id__in=ids).values_list("id", flat=True))
    missing = [i for i in ids if i not in found]
    if missing:
        raise LinksNotFound(missing)
    return ids


def _stage_kind(stage: str) -> str:
    try:
        return STAGE_KINDS[stage]
    except KeyError:
        raise ValueError(f"unknown stage {stage!r}; stages: {', '.join(STAGE_KINDS)}") from None


def links_enqueue_stage(
    *, link_ids: Iterable[int], stage: str, force: bool = False, actor: str = ""
) -> list[tuple[int, Task]]:
    """Queue one task of ``stage`` ("parse", "ai" or "notion") per link; returns (link id, task) pairs.

    Raises ``LinksNotFound`` naming unknown ids and ``NotionNotConfigured`` for
    the Notion stage without a configuration; nothing is queued then.
    """
    kind = _stage_kind(stage)
    ids = _existing_ids(link_ids)
    if stage == "notion" and not notion_configured():
        raise NotionNotConfigured()
    specs = [
        TaskSpec(kind=kind, args={"link_id": i} if stage == "notion" else {"link_id": i, "force": force}, link_id=i)
        for i in ids
    ]
    with transaction.atomic():
        tasks = tasks_create_bulk(specs=specs, actor=actor)
    return list(zip(ids, tasks, strict=True))


def links_run_stage_sync(
    *, link_ids: Iterable[int], stage: str, force: bool = False, actor: str = ""
) -> list[dict[str, Any]]:
    """Run ``stage`` in this process for a few links (at most SYNC_STAGE_MAX_LINKS); one result per link.

    A link whose step fails gets ``{"ok": false, "error": ...}`` and the error
    on the link; the next stage is still queued as a task on success.
    """
    _stage_kind(stage)
    ids = list(dict.fromkeys(int(i) for i in link_ids))
    cap = settings.SYNC_STAGE_MAX_LINKS
    if len(ids) > cap:
        raise SyncStageCapExceeded(len(ids), cap)
    ids = _existing_ids(ids)
    if stage == "notion" and not notion_configured():
        raise NotionNotConfigured()
    results = []
    for link_id in ids:
        try:
            if stage == "parse":
                result = link_parse(link_id=link_id, force=force)
            elif stage == "ai":
                result = link_summarize(link_id=link_id, force=force)
            else:
                result = link_sync_notion(link_id=link_id)
        except Link.DoesNotExist:
            results.append({"link_id": link_id, "ok": False, "error": "link was deleted", "status": None})
            continue
        except STAGE_ERRORS as exc:
            message = getattr(exc, "message", None) or str(exc)
            results.append({"link_id": link_id, "ok": False, "error": message, "status": _status_of(link_id)})
            continue
        results.append({"link_id": link_id, "ok": True, "result": result, "status": _status_of(link_id)})
    logger.info("%s ran %s for %d link(s) in-process", actor or "someone", stage, len(ids))
    return results


def _status_of(link_id: int) -> str | None:
    return Link.objects.filter(id=link_id).values_list("status", flat=True).first()
