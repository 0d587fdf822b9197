"""compose.yaml and the Dockerfile: the services the deployment guide promises, read as data.

Docker is not needed: the file is parsed with PyYAML. Where the ``docker compose``
client is installed, ``docker compose config`` validates it as well.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from typing import Any

import pytest
import yaml
from django.conf import settings

from tests.conftest import ROOT, process_env, wait_for

COMPOSE_FILE = ROOT / "compose.yaml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def _services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return command.split() if isinstance(command, str) else list(command)


def _worker_services(compose: dict[str, Any]) -> dict[str, str]:
    """Queue name -> the service running ``start_workers --queue <queue>``."""
    found = {}
    for name, service in _services(compose).items():
        command = _command(service)
        if "start_workers" in command and "--queue" in command:
            found[command[command.index("--queue") + 1]] = name
    return found


def test_every_service_has_a_health_check(compose):
    missing = [name for name, service in _services(compose).items() if not service.get("healthcheck", {}).get("test")]
    assert missing == []


def test_there_is_one_worker_service_for_every_configured_queue(compose):
    workers = _worker_services(compose)
    assert set(workers) == set(settings.QUEUE_NAMES)
    for queue, name in workers.items():
        environment = _services(compose)[name]["environment"]
        # The health check looks for this queue, and only the reconciler service reconciles.
        assert environment["WORKER_QUEUE"] == queue
        assert environment["RECONCILE_INTERVAL"] == "0"
        # Each queue's worker count comes from its setting, as outside Docker.
        assert f"WORKER_COUNT_{queue.upper()}" in environment


def test_redis_keeps_jobs_on_disk_and_never_evicts_them(compose):
    command = " ".join(_command(_services(compose)["redis"]))
    assert "--appendonly yes" in command
    assert "--maxmemory-policy noeviction" in command
    assert _services(compose)["redis"]["image"].startswith("redis:7")
    assert _services(compose)["postgres"]["image"].startswith("postgres:16")


def test_migrations_run_once_before_the_web_server_workers_and_reconciler(compose):
    services = _services(compose)
    assert _command(services["migrate"])[-3:] == ["manage.py", "migrate", "--no-input"]
    assert services["migrate"]["restart"] == "no"
    for name in ["web", "reconciler", *_worker_services(compose).values()]:
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name


def test_the_web_server_runs_under_gunicorn_and_checks_the_health_endpoint(compose):
    web = _services(compose)["web"]
    assert _command(web)[:2] == ["gunicorn", "kbmanager.wsgi"]
    assert "/api/monitoring/health" in " ".join(web["healthcheck"]["test"])


def test_the_reconciler_runs_reconcile_tasks_every_reconcile_interval(compose):
    script = " ".join(_command(_services(compose)["reconciler"]))
    assert "manage.py reconcile_tasks" in script
    assert "RECONCILE_INTERVAL" in script


def test_the_monitoring_profile_loads_the_prometheus_config_and_the_dashboard_from_docs(compose):
    services = _services(compose)
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["monitoring"]
    mounted = [v.split(":")[0] for name in ("prometheus", "grafana") for v in services[name]["volumes"]]
    local = [path for path in mounted if path.startswith("./")]
    assert "./docs/grafana" in local
    for path in local:
        assert (ROOT / path).exists(), path
    scrape = yaml.safe_load((ROOT / "docs/compose/prometheus.yml").read_text())["scrape_configs"][0]
    assert scrape["metrics_path"] == "/api/monitoring/metrics"
    assert scrape["authorization"]["type"] == "Bearer"
    assert compose["secrets"]["metrics_token"] == {"environment": "METRICS_TOKEN"}


def test_the_dockerfile_builds_on_python_3_13_slim_installs_the_pinned_requirements_and_runs_as_a_user():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.13-slim$", dockerfile, re.M)
    assert "pip install -r requirements/base.txt" in dockerfile
    assert "pip install --no-deps -r requirements/no-deps.txt" in dockerfile
    users = re.findall(r"^USER (\S+)$", dockerfile, re.M)
    assert users and users[-1] not in {"root", "0"}


@pytest.mark.django_db(transaction=True)
def test_the_worker_health_check_passes_only_while_a_worker_of_this_host_serves_the_queue(compose, start_process):
    check = _services(compose)["worker-ai"]["healthcheck"]["test"]
    assert check[:2] == ["CMD", "python"]

    def healthy() -> bool:
        env = process_env(WORKER_QUEUE="ai", REDIS_URL=settings.REDIS_URL)
        return subprocess.run([sys.executable, *check[2:]], env=env, cwd=ROOT, timeout=30).returncode == 0

    assert not healthy()
    supervisor = start_process("start_workers", "--queue", "ai", "--workers", "1", env={"RECONCILE_INTERVAL": "0"})
    wait_for(healthy, timeout=60, interval=0.5, what="the ai worker to register")
    supervisor.stop()
    assert not healthy()


@pytest.mark.skipif(
    shutil.which("docker") is None
    or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0,
    reason="the docker compose client is not installed",
)
def test_docker_compose_config_accepts_the_file():
    result = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE_FILE), "config", "--quiet"],
        capture_output=True,
        text=True,
        env={**os.environ, "SECRET_KEY": "x", "METRICS_TOKEN": "x"},
    )
    assert result.returncode == 0, result.stderr
