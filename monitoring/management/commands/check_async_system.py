from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, transaction

from kbmanager.queues import get_queue
from monitoring.stats import monitoring_redis, probe_redis, worker_stats
from tasks.exceptions import TaskError
from tasks.models import Task, TaskStatus
from tasks.services import task_cancel, task_create

CANARY_KIND = "tasks.noop"


@dataclass
class CheckResult:
    name: str
    passed: bool
    reason: str
    seconds: float = 0.0


class Command(BaseCommand):
    help = "Deployment self-test: Redis, queues, workers, a canary task end to end, the database, the scheduler."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument(
            "--queue", action="append", help="Check only this queue (repeat for several; default: every queue)."
        )
        parser.add_argument(
            "--timeout", type=float, default=30.0, help="Seconds to wait for the canary task (default 30)."
        )
        parser.add_argument("--json", action="store_true", help="Print the results as JSON.")

    def handle(self, *args, **options) -> str:
        queues = options["queue"] or list(settings.QUEUE_NAMES)
        unknown = [q for q in queues if q not in settings.QUEUE_NAMES]
        if unknown:
            raise CommandError(f"--queue {', '.join(unknown)} is not configured ({', '.join(settings.QUEUE_NAMES)})")
        if options["timeout"] <= 0:
            raise CommandError("--timeout must be a positive number of seconds")

        results: list[CheckResult] = []
        redis_ok = self._run(results, "redis connection", self._check_redis)
        self._run(results, "queues configured", lambda: self._check_queues(queues, redis_ok))
        live = self._live_queues(queues) if redis_ok else set()
        self._run(results, "live worker per queue", lambda: self._check_workers(queues, live, redis_ok))
        self._run(results, "canary task", lambda: self._check_canary(queues, live, options["timeout"]))
        self._run(results, "database round trip", self._check_database)
        self._run(results, "retry scheduler", lambda: self._check_scheduler(queues, redis_ok))

        passed = all(r.passed for r in results)
        if options["json"]:
            self.stdout.write(json.dumps({"ok": passed, "checks": [asdict(r) for r in results]}, indent=2))
        else:
            for r in results:
                mark = self.style.SUCCESS("PASS") if r.passed else self.style.ERROR("FAIL")
                self.stdout.write(f"{mark}  {r.name:<22} {r.reason}")
        failed = [r.name for r in results if not r.passed]
        if failed:
            raise CommandError(f"{len(failed)} of {len(results)} checks failed: {', '.join(failed)}", returncode=1)
        # With --json, stdout must hold nothing but the JSON document.
        return "" if options["json"] else f"all {len(results)} checks passed"

    def _run(self, results: list[CheckResult], name: str, check: Callable[[], tuple[bool, str]]) -> bool:
        started = time.perf_counter()
        try:
            passed, reason = check()
        except Exception as exc:  # a check that crashes is a failed check with its reason, not a traceback
            passed, reason = False, f"{type(exc).__name__}: {exc}"
        results.append(CheckResult(name, passed, reason, round(time.perf_counter() - started, 3)))
        return passed

    def _check_redis(self) -> tuple[bool, str]:
        probe = probe_redis()
        if probe["up"]:
            return True, f"PING answered in {probe['latency_ms']} ms"
        return False, f"Redis did not answer: {probe['error']}"

    def _check_queues(self, queues: list[str], redis_ok: bool) -> tuple[bool, str]:
        problems = []
        for name in queues:
            config = settings.RQ_QUEUES.get(name)
            if config is None:
                problems.append(f"{name} missing from RQ_QUEUES")
                continue
            queue = get_queue(name)
            if "JSONSerializer" not in str(config.get("SERIALIZER", "")):
                problems.append(f"{name} is not configured with the JSON serializer")
            if redis_ok:
                queue.count  # noqa: B018 - reading the length proves the queue's Redis answers
        if problems:
            return False, "; ".join(problems)
        if not redis_ok:
            return False, "configured, but Redis did not answer"
        return True, f"{', '.join(queues)} configured and reachable"

    def _live_queues(self, queues: list[str]) -> set[str]:
        return {q for w in worker_stats(monitoring_redis()) if w["alive"] for q in w["queues"] if q in queues}

    def _check_workers(self, queues: list[str], live: set[str], redis_ok: bool) -> tuple[bool, str]:
        if not redis_ok:
            return False, "unknown: Redis did not answer"
        missing = [q for q in queues if q not in live]
        if missing:
            return False, f"no live worker on {', '.join(missing)}"
        return True, f"every queue has a live worker ({', '.join(queues)})"

    def _check_canary(self, queues: list[str], live: set[str], timeout: float) -> tuple[bool, str]:
        # A queue nobody consumes cannot run the canary; saying so now beats waiting out the timeout.
        skipped = [q for q in queues if q not in live]
        canaries = {q: task_create(kind=CANARY_KIND, queue=q, actor="check_async_system") for q in queues if q in live}
        started = time.monotonic()
        pending = dict(canaries)
        while pending and time.monotonic() - started < timeout:
            done = Task.objects.filter(id__in=[t.id for t in pending.values()], status=TaskStatus.COMPLETED)
            finished = {str(i) for i in done.values_list("id", flat=True)}
            pending = {q: t for q, t in pending.items() if str(t.id) not in finished}
            if pending:
                time.sleep(0.1)
        elapsed = time.monotonic() - started
        for task in pending.values():
            try:
                task_cancel(task_id=task.id, actor="check_async_system")  # leave no canary behind
            except TaskError:
                pass
        problems = [f"{q}: not completed within {timeout:g} s" for q in pending]
        problems += [f"{q}: not run, no live worker" for q in skipped]
        if problems:
            return False, "; ".join(problems)
        return True, f"{CANARY_KIND} completed on {', '.join(canaries)} in {elapsed:.2f} s"

    def _check_database(self) -> tuple[bool, str]:
        # Write, read back and delete a task row in one transaction: proves the task table is writable
        # without leaving anything a worker or the reconciler could pick up.
        started = time.perf_counter()
        try:
            with transaction.atomic():
                row = Task.objects.create(kind=CANARY_KIND, queue="default", status=TaskStatus.CANCELLED)
                read = Task.objects.get(id=row.id)
                deleted, _ = Task.objects.filter(id=read.id).delete()
        except DatabaseError as exc:
            return False, f"PostgreSQL failed: {type(exc).__name__}: {exc}"
        if not deleted:
            return False, "the test row could not be deleted"
        return True, f"write, read and delete of a task row in {(time.perf_counter() - started) * 1000:.1f} ms"

    def _check_scheduler(self, queues: list[str], redis_ok: bool) -> tuple[bool, str]:
        if not redis_ok:
            return False, "unknown: Redis did not answer"
        client = monitoring_redis()
        holders = {q: client.get(f"rq:scheduler-lock:{q}") for q in queues}
        missing = [q for q, holder in holders.items() if not holder]
        if missing:
            return False, (
                f"no scheduler holds the lock of {', '.join(missing)}: delayed retries will not run "
                "(start a worker with --with-scheduler)"
            )
        names = sorted({h.decode() for h in holders.values() if h})
        return True, f"scheduler(s) {', '.join(names)} hold the locks of {', '.join(queues)}"
