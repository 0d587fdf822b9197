"""``manage.py demo``: the bundled site served on loopback, its links through a real worker to "ready"."""

from __future__ import annotations

import signal
import socket
import urllib.request

import pytest
from django.core.management import CommandError, call_command

from ingestion.demo import demo_articles, demo_categories
from ingestion.models import Category, Link, LinkStatus
from tests.conftest import OFFLINE_ENV, free_port, wait_for


@pytest.mark.django_db(transaction=True)
def test_the_demo_links_reach_ready_with_the_demo_categories_and_ctrl_c_stops_it_cleanly(start_process, start_worker):
    port = free_port()
    env = {**OFFLINE_ENV, "FETCH_ALLOWED_HOSTS": f"127.0.0.1:{port}"}
    start_worker("parsing", "ai", env=env)
    demo = start_process("demo", "--port", str(port), "--timeout", "60", env=env)

    wait_for(lambda: "stays up" in demo.output() or not demo.alive(), timeout=90, what="the demo to finish following")
    output = demo.output()
    assert demo.alive(), output

    articles = demo_articles()
    links = {link.url: link for link in Link.objects.select_related("category")}
    assert len(links) == len(articles) >= 6
    for article in articles:
        link = links[f"http://127.0.0.1:{port}{article.path}"]
        assert link.status == LinkStatus.READY, (article.path, link.last_error)
        assert link.category.name == article.category, article.path
        assert link.title and link.summary and link.tags.exists()
        # One progress line per change, ending with the link's "ready" line.
        assert f"link {link.id:<5} ready  ready" in output
    assert {c["name"] for c in demo_categories()} <= set(Category.objects.values_list("name", flat=True))
    assert "status  category" in output
    # The site keeps serving after the links are done.
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
        assert b"The Backyard Almanac" in response.read()

    demo.signal(signal.SIGINT)
    wait_for(lambda: not demo.alive(), timeout=15, what="the demo to stop on Ctrl-C")
    assert demo.popen.returncode == 0
    output = demo.output()
    assert "Traceback" not in output
    assert f"demo: {len(articles)} of {len(articles)} links ready, 0 failed" in output


@pytest.mark.django_db(transaction=True)
def test_with_no_submit_it_seeds_the_categories_and_serves_the_site_but_submits_nothing(start_process):
    port = free_port()
    demo = start_process("demo", "--port", str(port), "--no-submit", env=OFFLINE_ENV)

    wait_for(lambda: "stays up" in demo.output() or not demo.alive(), timeout=30, what="the demo site")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{demo_articles()[0].path}", timeout=5) as response:
        assert b"<article>" in response.read()
    assert Link.objects.count() == 0
    assert Category.objects.filter(name__in=[c["name"] for c in demo_categories()]).count() == len(demo_categories())
    # The host was not allowed for fetching: the command says so rather than letting every link fail.
    assert "FETCH_ALLOWED_HOSTS does not include" in demo.output()

    demo.signal(signal.SIGTERM)
    wait_for(lambda: not demo.alive(), timeout=15, what="the demo to stop on SIGTERM")
    assert demo.popen.returncode == 0
    assert "Traceback" not in demo.output()


def test_a_port_that_is_taken_is_a_command_error_naming_the_port():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(CommandError, match=f"--port {port}"):
            call_command("demo", "--port", str(port))


@pytest.mark.parametrize(("args", "message"), [(["--port", "70000"], "--port"), (["--timeout", "0"], "--timeout")])
def test_bad_arguments_are_command_errors_naming_the_argument(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("demo", *args)
