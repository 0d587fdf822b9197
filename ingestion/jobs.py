"""Task handlers of the pipeline: parse (queue parsing) -> ai (queue ai) -> notion (queue notion).

Each takes a link id, calls one service and maps the helpers' errors onto the
task system's: permanent ones fail the task at once, rate limits retry after
the delay the remote side asked for, anything else is retried by the runner.
The services and the helpers they use (trafilatura, openai, notion-client) are
imported here, at module level, because workers import every jobs module
before they fork, so a work-horse starts with nothing left to import.
"""

from __future__ import annotations

import logging
from typing import Any

from ingestion import services
from ingestion.lib.ai import AIError, AIRateLimited
from ingestion.lib.extract import ExtractionError
from ingestion.lib.fetch import FetchError
from ingestion.lib.notion import NotionError, NotionRateLimited
from ingestion.models import Link
from tasks.exceptions import PermanentTaskError, RetryAfter
from tasks.models import Task
from tasks.registry import task_handler, worker_warm_up

GONE = {"skipped": "link no longer exists"}

logger = logging.getLogger(__name__)

# Workers run this once before their first fork (web processes do not).
worker_warm_up(services.pipeline_warm_up)


def _is_final_attempt(ctx: Any) -> bool:
    """True when a failure of this attempt will not be retried, so the link should show failed."""
    task = Task.objects.filter(id=ctx.task_id).only("attempts", "retry_base", "max_retries").first()
    return task is None or task.retries_left == 0


def _fail_link_if_final(ctx: Any, link_id: int, exc: Exception) -> None:
    # Asked only on failure, so a successful job spends no query on it. The service has
    # already stored the error message; the last attempt also marks the link failed.
    if _is_final_attempt(ctx):
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        services.link_record_error(link_id=link_id, message=message, failed=True)


@task_handler(services.PARSE_KIND, queue="parsing")
def parse_link(ctx: Any, *, link_id: int, force: bool = False, **_: Any) -> dict[str, Any]:
    try:
        return services.link_parse(link_id=link_id, force=force, final_attempt=False)
    except Link.DoesNotExist:
        return GONE
    except FetchError as exc:
        if exc.permanent:
            raise PermanentTaskError(exc.message) from exc
        _fail_link_if_final(ctx, link_id, exc)
        raise
    except ExtractionError as exc:
        raise PermanentTaskError(str(exc) or "could not extract an article") from exc


@task_handler(services.SUMMARIZE_KIND, queue="ai")
def summarize_link(ctx: Any, *, link_id: int, force: bool = False, **_: Any) -> dict[str, Any]:
    try:
        return services.link_summarize(link_id=link_id, force=force, final_attempt=False)
    except Link.DoesNotExist:
        return GONE
    except services.LinkNotReady as exc:
        raise PermanentTaskError(str(exc)) from exc
    except AIError as exc:
        if exc.permanent:
            raise PermanentTaskError(str(exc)) from exc
        _fail_link_if_final(ctx, link_id, exc)
        if isinstance(exc, AIRateLimited):
            raise RetryAfter(f"AI rate limited: {exc}", seconds=exc.retry_after or 0) from exc
        raise


@task_handler(services.NOTION_KIND, queue="notion")
def sync_notion(ctx: Any, *, link_id: int, **_: Any) -> dict[str, Any]:
    try:
        return services.link_sync_notion(link_id=link_id, final_attempt=False)
    except Link.DoesNotExist:
        return GONE
    except (services.LinkNotReady, services.NotionNotConfigured) as exc:
        raise PermanentTaskError(str(exc)) from exc
    except NotionError as exc:
        _fail_link_if_final(ctx, link_id, exc)
        if isinstance(exc, NotionRateLimited):
            raise RetryAfter(f"Notion rate limited: {exc}", seconds=exc.retry_after or 0) from exc
        raise
