from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import connection

from kbmanager.queues import get_queue, get_redis
from tasks.worker import TaskWorker

pytest_plugins = ["tests.fakes.web", "tests.fakes.openai_api", "tests.fakes.notion_api"]

ROOT = Path(__file__).resolve().parent.parent

# Environment for processes that must run offline (the local AI backend, no Notion), whatever this one says.
OFFLINE_ENV = {
    "AI_BACKEND": "local",
    "OPENAI_API_KEY": "",
    "OPENAI_BASE_URL": "",
    "NOTION_TOKEN": "",
    "NOTION_DATABASE_ID": "",
}


def free_port() -> int:
    """A loopback port nothing listens on (free when asked; good enough for one test's server)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(autouse=True)
def clean_redis() -> Iterator[None]:
    """Every test starts with an empty test Redis database (db 15 by default)."""
    redis = get_redis()
    redis.flushdb()
    yield
    redis.flushdb()


def wait_for(
    predicate: Callable[[], object], *, timeout: float = 30.0, interval: float = 0.1, what: str = ""
) -> object:
    """Poll until ``predicate`` returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(interval)


def pid_alive(pid: int) -> bool:
    """True while process ``pid`` runs; a zombie (exited, not yet reaped) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


def run_burst_worker(*queues: str, worker_class: type = TaskWorker, with_scheduler: bool = False) -> TaskWorker:
    """Run a real RQ worker in this process until its queues are empty."""
    names = queues or ("default",)
    worker = worker_class([get_queue(name) for name in names], connection=get_redis())
    worker.work(burst=True, with_scheduler=with_scheduler, logging_level="WARNING")
    return worker


def test_database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def process_env(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": test_database_url(),
            "PYTHONUNBUFFERED": "1",
            # Marks every process a test starts (and their children), so teardown can find strays.
            "KB_TEST_PROCESS": _TEST_PROCESS_MARK,
        }
    )
    env.update(overrides)
    return env


_TEST_PROCESS_MARK = f"{os.getpid()}-{time.time_ns()}"


def kill_stray_test_processes() -> int:
    """SIGKILL any process still carrying this test session's mark (a worker that outlived its supervisor)."""
    killed = 0
    needle = f"KB_TEST_PROCESS={_TEST_PROCESS_MARK}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
        except (OSError, ProcessLookupError):
            continue
    return killed


class ManagedProcess:
    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.args = args
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.popen = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, signum: int) -> None:
        if self.alive():
            self.popen.send_signal(signum)

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
        # Leave no orphaned work-horse behind.
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._log.close()
        return self.popen.returncode


@pytest.fixture
def start_process(tmp_path: Path) -> Iterator[Callable[..., ManagedProcess]]:
    """Start ``manage.py <args>`` as a real process against the test database and Redis."""
    started: list[ManagedProcess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> ManagedProcess:
        log_path = tmp_path / f"process-{len(started)}.log"
        proc = ManagedProcess([sys.executable, str(ROOT / "manage.py"), *args], process_env(**(env or {})), log_path)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()
    # No process of one test may live on into the next and take its jobs.
    kill_stray_test_processes()


@pytest.fixture
def start_worker(start_process: Callable[..., ManagedProcess]) -> Callable[..., ManagedProcess]:
    """Start a real ``manage.py rqworker`` process (with the scheduler) on the given queues."""

    def start(*queues: str, env: dict[str, str] | None = None, name: str | None = None) -> ManagedProcess:
        args = ["rqworker", *(queues or ("default",)), "--with-scheduler"]
        if name:
            args += ["--name", name]
        return start_process(*args, env=env)

    return start
