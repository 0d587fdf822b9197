"""Rendering of ``system_stats()`` for terminals: the plain queue table and the rich dashboard.

``start_workers --stats`` prints ``queue_table_lines`` and ``monitor`` shows
the same columns from ``queue_rows``, so both always print the same figures.
"""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

# (column title, key in stats["queues"][name])
QUEUE_COLUMNS = (
    ("workers", "workers"),
    ("busy", "workers_busy"),
    ("queued", "queued"),
    ("oldest", "oldest_queued_age_seconds"),
    ("running", "running"),
    ("scheduled", "scheduled"),
    ("failed 1h", "failed_last_hour"),
    ("failed", "failed_total"),
)
STATUS_STYLES = {"healthy": "green", "degraded": "yellow", "unhealthy": "bold red", "off": "dim"}
BACKLOG_BAR_WIDTH = 20


def format_seconds(value: float | None) -> str:
    if value is None:
        return "-"
    value = int(value)
    if value < 120:
        return f"{value}s"
    if value < 7200:
        return f"{value // 60}m"
    return f"{value // 3600}h"


def format_figure(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key.endswith("_seconds"):
        return format_seconds(value)
    return str(value)


def queue_rows(stats: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """``[(queue name, [formatted figure per QUEUE_COLUMNS])]``."""
    return [(name, [format_figure(key, q[key]) for _, key in QUEUE_COLUMNS]) for name, q in stats["queues"].items()]


def queue_table_lines(stats: dict[str, Any]) -> list[str]:
    """The per-queue figures as a plain, aligned text table."""
    widths = [max(len(title), 7) for title, _ in QUEUE_COLUMNS]
    lines = [f"{'queue':<10} " + " ".join(f"{title:>{w}}" for (title, _), w in zip(QUEUE_COLUMNS, widths, strict=True))]
    for name, figures in queue_rows(stats):
        lines.append(f"{name:<10} " + " ".join(f"{fig:>{w}}" for fig, w in zip(figures, widths, strict=True)))
    return lines


def _status_text(status: str) -> Text:
    return Text(f"● {status}", style=STATUS_STYLES.get(status, ""))


def _backlog_bar(queued: int | None, largest: int, style: str) -> Text:
    if not queued or not largest:
        return Text("")
    filled = max(1, round(BACKLOG_BAR_WIDTH * queued / largest))
    return Text("█" * filled + "·" * (BACKLOG_BAR_WIDTH - filled), style=style)


def dashboard(stats: dict[str, Any], report: dict[str, Any]) -> RenderableType:
    """The ``monitor`` screen: health, queues with a backlog bar, workers, recent failures."""
    components = report["components"]
    overall = report["status"]
    host = stats["host"]
    header = Text.assemble(
        ("kbmanager ", "bold"),
        (f"● {overall}", STATUS_STYLES[overall]),
        f"   {stats['generated_at'][:19].replace('T', ' ')} UTC   host {host['hostname']}: ",
        f"cpu {host['cpu_percent']:.0f}%  load {host['load_1m']}  mem {host['memory_percent']:.0f}%  "
        f"disk {host['disk_percent']:.0f}%",
    )

    health = Table.grid(padding=(0, 2))
    health.add_column()
    health.add_column()
    health.add_column(overflow="fold")
    for name, verdict in components.items():
        health.add_row(name, _status_text(verdict["status"]), verdict["reason"])

    queues = Table(title="Queues", expand=False)
    queues.add_column("queue")
    for title, _ in QUEUE_COLUMNS:
        queues.add_column(title, justify="right")
    queues.add_column("backlog")
    largest = max((q["queued"] or 0 for q in stats["queues"].values()), default=0)
    for name, figures in queue_rows(stats):
        style = STATUS_STYLES[components[f"queue:{name}"]["status"]]
        queues.add_row(Text(name, style=style), *figures, _backlog_bar(stats["queues"][name]["queued"], largest, style))

    workers = Table(title="Workers")
    for column in ("worker", "host", "pid", "queues", "state", "current task", "heartbeat", "ok", "failed"):
        workers.add_column(column, justify="right" if column in ("pid", "ok", "failed") else "left")
    for w in stats["workers"] or []:
        task = f"{w['current_task_kind'] or ''} {w['current_task'][:8]}".strip() if w["current_task"] else ""
        state_style = {"busy": "cyan", "idle": "green", "stale": "bold red"}.get(w["state"], "yellow")
        workers.add_row(
            w["name"][:32],
            w["hostname"],
            str(w["pid"] or ""),
            ",".join(w["queues"]),
            Text(w["state"], style=state_style),
            task,
            format_seconds(w["heartbeat_age_seconds"]),
            str(w["successful_jobs"]),
            str(w["failed_jobs"]),
        )
    if not stats["workers"]:
        workers.add_row(Text("no live worker" if stats["workers"] is not None else "Redis is down", style="bold red"))

    failures = Table(title="Recent failures")
    for column in ("finished", "kind", "queue", "attempts", "error"):
        failures.add_column(column, overflow="fold")
    for f in stats["recent_failures"] or []:
        failures.add_row(f["finished_at"][:19].replace("T", " "), f["kind"], f["queue"], str(f["attempts"]), f["error"])

    by_status = stats["tasks"]["by_status"]
    totals = (
        "  ".join(f"{status} {n}" for status, n in by_status.items())
        + f"   (finished counts {format_seconds(stats['tasks']['finished_counts_age_seconds'])} old)"
        if by_status is not None
        else "tasks: PostgreSQL is down"
    )
    return Group(Panel(header), health, queues, Text("Tasks: " + totals), workers, failures)
