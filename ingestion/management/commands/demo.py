from __future__ import annotations

import signal
import threading
import time
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from ingestion.demo import DemoSiteServer, demo_articles, demo_categories
from ingestion.models import Category, Link, LinkStatus
from ingestion.services import links_enqueue_stage, links_submit, notion_configured

# Which pipeline stage a link status belongs to, for the progress lines.
STAGE_OF_STATUS = {
    LinkStatus.NEW: "parse",
    LinkStatus.PARSING: "parse",
    LinkStatus.PARSED: "ai",
    LinkStatus.SUMMARIZING: "ai",
    LinkStatus.READY: "ready",
    LinkStatus.SYNCING: "notion",
    LinkStatus.SYNCED: "synced",
    LinkStatus.FAILED: "failed",
}
POLL_INTERVAL = 0.3


class Command(BaseCommand):
    help = "Serve the bundled sample site on loopback, submit its articles and follow them through the pipeline."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--port", type=int, default=8765, help="Port of the sample site on 127.0.0.1 (0: any).")
        parser.add_argument("--no-submit", action="store_true", help="Only serve the site; submit nothing.")
        parser.add_argument(
            "--timeout", type=float, default=60.0, help="Seconds to follow the links (the site stays up after)."
        )

    def handle(self, *args: Any, **options: Any) -> str:
        port, timeout = options["port"], options["timeout"]
        if not 0 <= port <= 65535:
            raise CommandError(f"--port must be between 0 and 65535, got {port}")
        if timeout <= 0:
            raise CommandError(f"--timeout must be a positive number of seconds, got {timeout}")
        try:
            server = DemoSiteServer(port=port).start()
        except OSError as exc:
            raise CommandError(f"--port {port}: cannot serve the demo site ({exc.strerror or exc})") from None

        stop = threading.Event()
        previous_handlers = self._stop_on_signals(stop)
        summary = "demo site served"
        try:
            self._say(f"demo site: {server.url('/')} ({len(demo_articles())} articles)")
            self._seed_categories()
            self._check_fetch_allowed(server.netloc)
            if not options["no_submit"]:
                link_ids = self._submit(server)
                summary = self._follow(link_ids, timeout=timeout, stop=stop)
            # The waiting is over; do not hold a database connection while only serving files.
            connection.close()
            if not stop.is_set():
                self._say(f"The demo site stays up at {server.url('/')}; press Ctrl-C to stop.")
                stop.wait()
        except KeyboardInterrupt:
            pass  # a Ctrl-C before our handler was installed, or outside the main thread
        finally:
            server.stop()
            for signum, handler in previous_handlers.items():
                signal.signal(signum, handler)
        return summary

    # --- steps ------------------------------------------------------------------

    def _say(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()

    def _stop_on_signals(self, stop: threading.Event) -> dict[int, Any]:
        """Ctrl-C and SIGTERM (from ``make demo``'s clean-up) end the command quietly, without a traceback."""
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous = {}
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, lambda *_: stop.set())
        return previous

    def _seed_categories(self) -> None:
        created = []
        for item in demo_categories():
            _, was_created = Category.objects.get_or_create(
                name=item["name"], defaults={"description": item["description"], "keywords": item["keywords"]}
            )
            if was_created:
                created.append(item["name"])
        names = ", ".join(item["name"] for item in demo_categories())
        self._say(f"categories: {names}" + (f" ({len(created)} created)" if created else " (already there)"))

    def _check_fetch_allowed(self, netloc: str) -> None:
        allowed = {host.strip().lower() for host in settings.FETCH_ALLOWED_HOSTS}
        if netloc not in allowed and netloc.split(":")[0] not in allowed:
            # Workers refuse loopback addresses unless allowed, so every link would fail to parse.
            self.stderr.write(
                f"warning: FETCH_ALLOWED_HOSTS does not include {netloc}, so workers will refuse to fetch the "
                f"demo pages. Use `make demo`, or start the workers with FETCH_ALLOWED_HOSTS={netloc}."
            )

    def _submit(self, server: DemoSiteServer) -> list[int]:
        user = get_user_model().objects.filter(is_superuser=True).order_by("id").first()
        urls = [server.url(article.path) for article in demo_articles()]
        results = links_submit(urls=urls, user=user, process=True)
        created = [r["id"] for r in results if r["status"] == "created"]
        duplicates = [r["id"] for r in results if r["status"] == "duplicate"]
        invalid = [f"{r['url']} ({r.get('reason')})" for r in results if r["status"] == "invalid"]
        if invalid:
            raise CommandError(f"the demo URLs were refused: {'; '.join(invalid)}")
        who = f" as {user.get_username()}" if user else " (no superuser yet: submitted without an owner)"
        self._say(f"submitted {len(urls)} links{who}: {len(created)} new, {len(duplicates)} already known")
        # A link that failed in an earlier run (say, before its host was allowed) is parsed again.
        failed = list(Link.objects.filter(id__in=duplicates, status=LinkStatus.FAILED).values_list("id", flat=True))
        if failed:
            links_enqueue_stage(link_ids=failed, stage="parse", force=True, actor="demo")
            self._say(f"queued {len(failed)} previously failed link(s) for parsing again")
        return [r["id"] for r in results]

    def _follow(self, link_ids: Sequence[int], *, timeout: float, stop: threading.Event) -> str:
        """Print one line per status change until every link is done or ``timeout`` passes; then the table."""
        done = {LinkStatus.SYNCED, LinkStatus.FAILED} | (set() if notion_configured() else {LinkStatus.READY})
        seen: dict[int, str] = {}
        started = time.monotonic()
        self._say("following the links: parse -> ai -> ready" + (" -> notion" if notion_configured() else ""))
        while True:
            rows = list(Link.objects.filter(id__in=link_ids).values("id", "status", "title", "url").order_by("id"))
            elapsed = time.monotonic() - started
            for row in rows:
                if seen.get(row["id"]) != row["status"]:
                    seen[row["id"]] = row["status"]
                    stage = STAGE_OF_STATUS.get(row["status"], row["status"])
                    label = row["title"] or row["url"]
                    self._say(f"{elapsed:6.1f} s  link {row['id']:<5} {stage:<6} {row['status']:<12} {label}")
            if rows and all(row["status"] in done for row in rows):
                break
            if elapsed >= timeout or stop.is_set():
                break
            stop.wait(POLL_INTERVAL)
        self._print_table(link_ids)
        statuses = [seen.get(i, "") for i in link_ids]
        finished = sum(1 for s in statuses if s in {LinkStatus.READY, LinkStatus.SYNCED})
        failed = sum(1 for s in statuses if s == LinkStatus.FAILED)
        if finished + failed < len(link_ids) and not stop.is_set():
            self.stderr.write(
                f"{len(link_ids) - finished - failed} link(s) not done after {timeout:.0f} s: are the workers "
                "running (`manage.py start_workers`)? See /admin/tasks/task/ for their tasks."
            )
        return f"demo: {finished} of {len(link_ids)} links ready, {failed} failed"

    def _print_table(self, link_ids: Sequence[int]) -> None:
        links = Link.objects.filter(id__in=link_ids).select_related("category").prefetch_related("tags").order_by("id")
        rows = [
            (
                link.status,
                link.category.name if link.category else "-",
                (link.title or link.url)[:60],
                ", ".join(sorted(tag.name for tag in link.tags.all())) or "-",
            )
            for link in links
        ]
        header = ("status", "category", "title", "tags")
        widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(3)]
        self._say("")
        for row in [header, *rows]:
            self._say(
                "  ".join(str(value).ljust(width) for value, width in zip(row[:3], widths, strict=True)) + "  " + row[3]
            )
        self._say("")
