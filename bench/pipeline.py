"""N links through parse -> ai -> notion with real worker processes against loopback servers.

Pages answer after 300 ms, the OpenAI-compatible server after 1 s and Notion
after 200 ms (``--page-latency`` etc. change them). Workers are started with
``manage.py start_workers`` at the configured default counts (3 parsing, 2 ai,
2 notion). Prints links per minute beside the ceiling the worker counts allow,
min over stages of workers / latency * 60, and their ratio (target >= 0.8).
Then times ``POST /api/links/`` with 1,000 new URLs (target < 1 s).

    .venv/bin/python bench/pipeline.py [--links 60] [--keep]

Uses its own database (``kb_bench_pipeline``, dropped at the end unless
``--keep``) and Redis DB ``--redis-db`` (default 12), which it flushes.
Pages come from ``../shared/corpus`` (distinct texts, so the AI cache never
hides a call); without the corpus, generated pages are served.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, bench_env, drop_database, manage, recreate_database, setup_django  # noqa: E402
from ingestion.lib.scoring import corpus_available, load_corpus_html, load_ground_truth  # noqa: E402
from tests.fakes.notion_api import FakeNotion  # noqa: E402
from tests.fakes.openai_api import FakeOpenAI  # noqa: E402
from tests.fakes.web import FakeWeb  # noqa: E402

DATABASE = "kb_bench_pipeline"
WORKER_COUNTS = {"parsing": 3, "ai": 2, "notion": 2}
CATEGORIES = ["Technology", "Politics", "Business", "Sport", "Science", "Entertainment"]


def generated_page(index: int) -> str:
    words = " ".join(f"word{index}x{j}" for j in range(40))
    paragraphs = "".join(
        f"<p>Paragraph {k} of generated article {index} about technology and business. {words}.</p>" for k in range(8)
    )
    return (
        f"<html><head><title>Article {index}</title></head>"
        f"<body><article><h1>Article {index}</h1>{paragraphs}</article></body></html>"
    )


def serve_pages(web: FakeWeb, count: int, latency: float) -> list[str]:
    pages: list[str | bytes] = []
    if corpus_available():
        pages = [load_corpus_html(page_id) for page_id in sorted(load_ground_truth())]
    while len(pages) < count:
        pages.append(generated_page(len(pages)))
    urls = []
    for index in range(count):
        path = f"/articles/{index}"
        web.add(path, pages[index], delay=latency)
        urls.append(web.url(path))
    return urls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--links", type=int, default=60)
    parser.add_argument("--page-latency", type=float, default=0.3)
    parser.add_argument("--ai-latency", type=float, default=1.0)
    parser.add_argument("--notion-latency", type=float, default=0.2)
    parser.add_argument("--redis-db", type=int, default=12)
    parser.add_argument("--timeout", type=float, default=600.0, help="give up waiting after this many seconds")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    options = parser.parse_args()

    web, openai_server, notion = FakeWeb(), FakeOpenAI(), FakeNotion()
    openai_server.latency = options.ai_latency
    notion.latency = options.notion_latency
    urls = serve_pages(web, options.links, options.page_latency)

    env = bench_env(
        DATABASE,
        options.redis_db,
        ALLOWED_HOSTS="localhost,127.0.0.1,testserver",
        FETCH_ALLOWED_HOSTS=web.host,
        AI_BACKEND="openai",
        OPENAI_BASE_URL=openai_server.base_url,
        OPENAI_API_KEY="bench-key",
        OPENAI_MODEL="bench-model",
        NOTION_TOKEN=notion.token,
        NOTION_DATABASE_ID=notion.database_id,
        NOTION_BASE_URL=notion.base_url,
        WORKER_COUNT_PARSING=str(WORKER_COUNTS["parsing"]),
        WORKER_COUNT_AI=str(WORKER_COUNTS["ai"]),
        WORKER_COUNT_NOTION=str(WORKER_COUNTS["notion"]),
        WORKER_COUNT_DEFAULT="1",
    )
    recreate_database(DATABASE)
    manage(env, "migrate", "-v0")
    setup_django(env)

    from django.contrib.auth.models import User
    from django.test import Client
    from rest_framework.authtoken.models import Token
    from rq import Worker

    from ingestion.models import Category, Link, LinkStatus
    from kbmanager.queues import get_redis

    get_redis().flushdb()
    Category.objects.bulk_create([Category(name=name) for name in CATEGORIES])
    user = User.objects.create_superuser("bench", "bench@example.com", "bench")
    token = Token.objects.create(user=user)
    client = Client(HTTP_AUTHORIZATION=f"Token {token.key}")

    supervisor = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "start_workers"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        # The clock starts once every worker has registered (and so has imported the handlers).
        expected_workers = sum(WORKER_COUNTS.values()) + 1
        wait_until = time.perf_counter() + 60
        while len(Worker.all(connection=get_redis())) < expected_workers:
            if time.perf_counter() > wait_until:
                raise SystemExit("workers did not start within 60 s")
            time.sleep(0.1)
        started = time.perf_counter()
        response = client.post("/api/links/", json.dumps({"urls": urls}), content_type="application/json")
        assert response.status_code == 201, response.content
        deadline = started + options.timeout
        finished_states = [LinkStatus.SYNCED, LinkStatus.FAILED]
        while Link.objects.filter(status__in=finished_states).count() < options.links:
            if time.perf_counter() > deadline:
                raise SystemExit(f"timed out: {Link.objects.filter(status__in=finished_states).count()} finished")
            time.sleep(0.25)
        elapsed = time.perf_counter() - started
        synced = Link.objects.filter(status=LinkStatus.SYNCED).count()
        failed = list(Link.objects.filter(status=LinkStatus.FAILED).values_list("url", "last_error")[:5])
    finally:
        os.killpg(supervisor.pid, signal.SIGTERM)
        try:
            supervisor.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(supervisor.pid, signal.SIGKILL)

    latencies = {"parsing": options.page_latency, "ai": options.ai_latency, "notion": options.notion_latency}
    ceilings = {q: WORKER_COUNTS[q] / latencies[q] * 60 for q in WORKER_COUNTS}
    ceiling = min(ceilings.values())
    rate = options.links / elapsed * 60
    print(f"pipeline: {options.links} links in {elapsed:.1f} s, {synced} synced, {len(failed)} failed")
    for url, error in failed:
        print(f"  failed {url}: {error}")
    print("  stage ceilings (links/min): " + ", ".join(f"{q} {c:.0f}" for q, c in ceilings.items()))
    print(f"  throughput: {rate:.1f} links/min; ceiling {ceiling:.1f} links/min; ratio {rate / ceiling:.2f}")
    print(
        f"  requests: pages {len(web.requests)}, AI {len(openai_server.requests)}, Notion {len(notion.requests)} "
        f"({len(notion.pages)} pages)"
    )

    timings = []
    for run in range(3):
        batch = [f"https://bench{run}.example.com/articles/{i}?utm_source=bench" for i in range(1000)]
        body = json.dumps({"urls": batch})
        t0 = time.perf_counter()
        response = client.post("/api/links/", body, content_type="application/json")
        timings.append(time.perf_counter() - t0)
        assert response.status_code == 201 and response.json()["created"] == 1000, response.content[:300]
    print(
        f"POST /api/links/ with 1,000 URLs (creates 1,000 links and parse tasks): "
        f"median {statistics.median(timings) * 1000:.0f} ms, max {max(timings) * 1000:.0f} ms over {len(timings)} runs"
    )

    get_redis().flushdb()
    from django.db import connections

    connections.close_all()
    for server in (web, openai_server, notion):
        server.close()
    if not options.keep:
        drop_database(DATABASE)


if __name__ == "__main__":
    main()
