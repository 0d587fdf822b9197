"""The table of task kinds: name -> handler and queue.

A handler is a plain function ``handler(ctx, **args)`` registered with
``@task_handler("app.name", queue="parsing")``. It receives ids and plain
values in ``args`` (they are stored as JSON), re-reads whatever rows it needs,
and returns a JSON-serializable result. Handlers must be safe to run twice.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.conf import settings

Handler = Callable[..., Any]
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskKind:
    name: str
    queue: str
    handler: Handler


_KINDS: dict[str, TaskKind] = {}


class UnknownTaskKind(LookupError):
    pass


def task_handler(name: str, *, queue: str) -> Callable[[Handler], Handler]:
    def register(func: Handler) -> Handler:
        if queue not in settings.QUEUE_NAMES:
            raise ValueError(f"task kind {name!r} names unknown queue {queue!r}")
        _KINDS[name] = TaskKind(name=name, queue=queue, handler=func)
        return func

    return register


_WARM_UPS: list[Callable[[], None]] = []


def worker_warm_up(func: Callable[[], None]) -> Callable[[], None]:
    """Register set-up that worker processes run once before their first fork.

    Libraries that build things lazily on first use (SDK clients, parsers)
    would otherwise rebuild them in every work-horse. Web processes and
    management commands do not pay for it.
    """
    _WARM_UPS.append(func)
    return func


def run_worker_warm_ups() -> None:
    for func in _WARM_UPS:
        try:
            func()
        except Exception:  # a warm-up problem must never stop a worker; the jobs will report it
            logger.warning("worker warm-up %s failed; work-horses will set up on their own", func, exc_info=True)


def get_kind(name: str) -> TaskKind:
    try:
        return _KINDS[name]
    except KeyError:
        raise UnknownTaskKind(f"no task handler is registered for kind {name!r}") from None


def kind_names() -> list[str]:
    return sorted(_KINDS)


def autodiscover() -> None:
    """Import every app's ``jobs`` module and the configured extra modules."""
    for app_config in apps.get_app_configs():
        module_name = f"{app_config.name}.jobs"
        try:
            importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
    for module_name in settings.TASK_HANDLER_MODULES:
        importlib.import_module(module_name)
