from __future__ import annotations

import gzip
import json
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from ingestion.lib.scoring import corpus_available, corpus_dir, load_ground_truth, score_page

ROOT = Path(__file__).resolve().parents[2]
PARAGRAPH = (
    "The observatory recorded a bright meteor over the northern hills shortly after midnight on Friday, "
    "and dozens of residents reported hearing a low rumble a few seconds after the flash lit up the sky."
)
PAGE = f"""<html lang="en"><head><title>Meteor lights up the hills</title>
<meta name="author" content="Ana Lima"><meta property="article:published_time" content="2023-08-11">
</head><body><article><h1>Meteor lights up the hills</h1><p>{PARAGRAPH}</p><p>{PARAGRAPH}</p></article></body></html>"""


@pytest.fixture
def article_gz(tmp_path: Path) -> Path:
    path = tmp_path / "meteor.html.gz"
    path.write_bytes(gzip.compress(PAGE.encode()))
    return path


def run_command(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("extract_article", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_json_output_has_one_object_per_file_with_every_field(article_gz, tmp_path):
    plain = tmp_path / "meteor.html"
    plain.write_text(PAGE, encoding="utf-8")
    out, err = run_command(str(article_gz), str(plain), "--json")
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["path"] for r in records] == [str(article_gz), str(plain)]
    for record in records:
        assert set(record) == {"path", "title", "text", "authors", "published", "image", "language"}
        assert record["title"] == "Meteor lights up the hills"
        assert PARAGRAPH in record["text"]
        assert record["authors"] == ["Ana Lima"]
        assert record["published"].startswith("2023-08-11")
        assert record["language"] == "en"
    assert "extracted 2 file(s)" in err


@pytest.mark.parametrize("extractor", ["trafilatura", "newspaper"])
def test_readable_output_shows_the_article_with_the_chosen_extractor(article_gz, extractor):
    out, _err = run_command(str(article_gz), "--extractor", extractor)
    assert f"== {article_gz}" in out
    assert "title:     Meteor lights up the hills" in out
    assert "authors:   Ana Lima" in out
    assert PARAGRAPH[:60] in out
    assert f"extracted 1 file(s) with {extractor}" in out


def test_a_missing_file_is_a_command_error_naming_the_path_after_the_other_files(article_gz, tmp_path):
    missing = tmp_path / "nope.html.gz"
    out = StringIO()
    with pytest.raises(CommandError, match=f"1 of 2 file\\(s\\) failed: {missing}: no such file"):
        call_command("extract_article", str(missing), str(article_gz), "--json", stdout=out, stderr=StringIO())
    assert json.loads(out.getvalue())["path"] == str(article_gz)


def test_a_file_without_article_text_fails_with_its_path(tmp_path):
    empty = tmp_path / "empty.html"
    empty.write_text("<html><body><script>x()</script></body></html>")
    with pytest.raises(CommandError, match=f"{empty}: no article text found"):
        run_command(str(empty))


def test_a_corrupt_gzip_file_fails_with_its_path(tmp_path):
    broken = tmp_path / "broken.html.gz"
    broken.write_bytes(b"\x1f\x8bnot really gzip")
    with pytest.raises(CommandError, match=f"{broken}: not a valid gzip file"):
        run_command(str(broken))


@pytest.mark.skipif(not corpus_available(), reason="extraction corpus not found (set KB_CORPUS_DIR)")
def test_manage_py_extracts_a_corpus_page_and_exits_non_zero_when_a_file_fails(tmp_path):
    page_id = sorted(load_ground_truth())[1]
    page = corpus_dir() / "article-extraction-dev" / "html" / f"{page_id}.html.gz"
    env = {"DJANGO_SETTINGS_MODULE": "tests.settings", "PATH": "/usr/bin:/bin"}
    ok = subprocess.run(
        [sys.executable, "manage.py", "extract_article", str(page), "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    record = json.loads(ok.stdout)
    assert score_page(record["text"], load_ground_truth()[page_id]["articleBody"]).f1 > 0.9

    failed = subprocess.run(
        [sys.executable, "manage.py", "extract_article", str(page), str(tmp_path / "missing.html")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode != 0
    assert "missing.html: no such file" in failed.stderr
