"""The multi-queue worker supervisor behind ``manage.py start_workers``.

It runs ``manage.py rqworker <queue> --with-scheduler`` processes, as many per
queue as configured, restarts any that die, runs the reconciler periodically,
and on SIGTERM/SIGINT shuts everything down without losing a task: workers get
a warm shutdown (the running job finishes), and a job still running when the
grace period ends is stopped and its task put back in its queue.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connections

logger = logging.getLogger("kbmanager.supervisor")

# A worker that dies sooner than this after starting is crash-looping; back off.
_FAST_EXIT_SECONDS = 5.0
_MAX_BACKOFF_SECONDS = 30.0
_PR_SET_PDEATHSIG = 1


def _stop_when_parent_dies() -> None:
    """In a new worker process: ask Linux for SIGTERM (a warm shutdown) if the supervisor dies.

    Workers run in sessions of their own, so a supervisor killed with SIGKILL
    would otherwise leave them running unsupervised.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class WorkerSlot:
    queue: str
    index: int
    process: subprocess.Popen | None = None
    name: str = ""
    started_at: float = 0.0
    restarts: int = 0
    next_start_at: float = 0.0
    backoff: float = 1.0
    exit_codes: list[int] = field(default_factory=list)


class WorkerSupervisor:
    def __init__(
        self,
        plan: dict[str, int],
        *,
        reconcile_interval: float | None = None,
        shutdown_timeout: float | None = None,
        extra_worker_args: list[str] | None = None,
        out: Callable[[str], None] | None = None,
    ) -> None:
        self.plan = {queue: count for queue, count in plan.items() if count > 0}
        self.reconcile_interval = settings.RECONCILE_INTERVAL if reconcile_interval is None else reconcile_interval
        self.shutdown_timeout = settings.WORKER_SHUTDOWN_TIMEOUT if shutdown_timeout is None else shutdown_timeout
        self.extra_worker_args = extra_worker_args or []
        self.out = out or (lambda line: logger.info("%s", line))
        self.host = socket.gethostname()
        self.slots = [WorkerSlot(queue=q, index=i) for q, count in self.plan.items() for i in range(count)]
        self._stopping = False
        self._last_reconcile = 0.0

    # -- process management --------------------------------------------------

    def _command(self, slot: WorkerSlot) -> list[str]:
        manage = str(settings.BASE_DIR / "manage.py")
        return [
            sys.executable,
            manage,
            "rqworker",
            slot.queue,
            "--with-scheduler",
            "--name",
            slot.name,
            *self.extra_worker_args,
        ]

    def _start(self, slot: WorkerSlot) -> None:
        slot.name = f"{self.host}.{slot.queue}.{slot.index}.{uuid.uuid4().hex[:8]}"
        # Own session: a Ctrl-C in the terminal reaches only the supervisor,
        # which then shuts the workers down in order.
        slot.process = subprocess.Popen(self._command(slot), start_new_session=True, preexec_fn=_stop_when_parent_dies)
        slot.started_at = time.monotonic()
        self.out(f"started worker {slot.name} (pid {slot.process.pid}) on queue {slot.queue}")

    def _check(self, slot: WorkerSlot, now: float) -> None:
        if slot.process is None:
            if now >= slot.next_start_at:
                self._start(slot)
            return
        code = slot.process.poll()
        if code is None:
            return
        lived = now - slot.started_at
        slot.exit_codes.append(code)
        slot.restarts += 1
        slot.backoff = min(_MAX_BACKOFF_SECONDS, slot.backoff * 2) if lived < _FAST_EXIT_SECONDS else 1.0
        delay = slot.backoff if lived < _FAST_EXIT_SECONDS else 0.0
        self.out(
            f"worker {slot.name} (pid {slot.process.pid}) exited with {code} after {lived:.1f} s; "
            f"restarting{f' in {delay:.0f} s' if delay else ''}"
        )
        self._requeue_tasks_of([slot.name], reason=f"worker {slot.name} exited with {code}")
        slot.process = None
        slot.next_start_at = now + delay
        if not delay:
            self._start(slot)

    def _requeue_tasks_of(self, worker_names: list[str], *, reason: str) -> None:
        """Running tasks of workers that are gone go back to their queue (see ``tasks_requeue_running``)."""
        from tasks.models import Task, TaskStatus
        from tasks.services import tasks_requeue_running

        try:
            ids = list(
                Task.objects.filter(status=TaskStatus.RUNNING, worker_name__in=worker_names).values_list(
                    "id", flat=True
                )
            )
            if ids:
                count = tasks_requeue_running(task_ids=ids, reason=reason, actor="supervisor")
                self.out(f"requeued {count} interrupted task(s): {reason}")
        except Exception:
            logger.exception("could not requeue tasks of %s; the reconciler will", worker_names)
        finally:
            connections.close_all()

    def _reconcile(self, now: float) -> None:
        if not self.reconcile_interval or now - self._last_reconcile < self.reconcile_interval:
            return
        self._last_reconcile = now
        try:
            from tasks.reconciler import reconcile
        except ImportError:
            return
        try:
            report = reconcile(actor="supervisor")
            if report.total:
                self.out(f"reconciler: {report.summary()}")
        except Exception:
            logger.exception("reconciler pass failed; will try again")
        finally:
            connections.close_all()

    # -- lifecycle -------------------------------------------------------------

    def request_stop(self, signum: int, frame: object) -> None:
        if not self._stopping:
            self.out(f"received {signal.Signals(signum).name}; stopping workers (running jobs finish first)")
        self._stopping = True

    def run(self, *, max_seconds: float | None = None) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        deadline = time.monotonic() + max_seconds if max_seconds else None
        # Let the first reconcile pass wait one interval, after workers registered.
        self._last_reconcile = time.monotonic()
        for slot in self.slots:
            self._start(slot)
        try:
            while not self._stopping:
                now = time.monotonic()
                if deadline and now >= deadline:
                    break
                for slot in self.slots:
                    self._check(slot, now)
                self._reconcile(now)
                time.sleep(0.5)
        finally:
            self.stop()

    def stop(self) -> None:
        running = [slot for slot in self.slots if slot.process and slot.process.poll() is None]
        for slot in running:
            self._signal(slot, signal.SIGTERM)
        deadline = time.monotonic() + self.shutdown_timeout
        while time.monotonic() < deadline and any(slot.process.poll() is None for slot in running):
            time.sleep(0.2)
        stragglers = [slot for slot in running if slot.process.poll() is None]
        if stragglers:
            self.out(f"{len(stragglers)} worker(s) still busy after {self.shutdown_timeout:.0f} s; stopping their jobs")
            for slot in stragglers:
                # A second signal is RQ's cold shutdown: the horse is killed.
                self._signal(slot, signal.SIGTERM)
            time.sleep(1.5)
            for slot in stragglers:
                self._signal(slot, signal.SIGTERM)
            kill_deadline = time.monotonic() + 10
            while time.monotonic() < kill_deadline and any(s.process.poll() is None for s in stragglers):
                time.sleep(0.2)
            for slot in stragglers:
                if slot.process.poll() is None:
                    os.killpg(slot.process.pid, signal.SIGKILL)
                    slot.process.wait()
            self._requeue_tasks_of([slot.name for slot in stragglers], reason="worker stopped during shutdown")
        self.out(f"stopped {len(running)} worker(s)")

    @staticmethod
    def _signal(slot: WorkerSlot, signum: int) -> None:
        try:
            slot.process.send_signal(signum)
        except ProcessLookupError:
            pass
