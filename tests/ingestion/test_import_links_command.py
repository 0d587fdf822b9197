from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from ingestion.models import Link
from tasks.models import Task
from tests.ingestion.conftest import make_user
from tests.ingestion.test_links_import import FORMATS

pytestmark = pytest.mark.django_db


def _run(*args):
    out = StringIO()
    call_command("import_links", *args, stdout=out)
    return out.getvalue()


@pytest.mark.parametrize("name", FORMATS)
def test_import_links_reads_each_format_and_prints_the_summary(tmp_path, name):
    filename, data, expected = FORMATS[name]
    path = tmp_path / filename
    path.write_bytes(data)

    output = _run(str(path))

    assert f"created {expected['created']}, duplicate {expected['duplicate']}" in output
    assert Link.objects.count() == 2
    assert Task.objects.count() == 2


def test_dry_run_writes_nothing(tmp_path):
    path = tmp_path / "links.txt"
    path.write_bytes(FORMATS["text"][1])

    output = _run(str(path), "--dry-run")

    assert "would create 2, duplicate 1, invalid 1" in output
    assert "not a url" in output  # the first errors are shown
    assert not Link.objects.exists()


def test_no_process_adds_links_without_tasks_and_records_the_user(tmp_path):
    user = make_user(username="importer")
    path = tmp_path / "links.txt"
    path.write_bytes(FORMATS["text"][1])

    _run(str(path), "--no-process", "--user", "importer")

    assert Link.objects.filter(submitted_by=user).count() == 2
    assert not Task.objects.exists()


def test_a_missing_file_is_a_command_error_naming_it(tmp_path):
    missing = tmp_path / "nope.txt"
    with pytest.raises(CommandError, match="nope.txt"):
        _run(str(missing))


def test_an_unknown_user_is_a_command_error(tmp_path):
    path = tmp_path / "links.txt"
    path.write_bytes(FORMATS["text"][1])
    with pytest.raises(CommandError, match="ghost"):
        _run(str(path), "--user", "ghost")


def test_twenty_thousand_lines_lose_nothing(tmp_path):
    lines = [f"https://site{i % 50}.example.com/articles/{i}" for i in range(20_000)]
    path = tmp_path / "big.txt"
    path.write_text("\n".join(lines) + "\n")

    dry = _run(str(path), "--dry-run")
    assert "would create 20000, duplicate 0, invalid 0" in dry
    assert not Link.objects.exists()

    real = _run(str(path), "--no-process")
    assert "created 20000, duplicate 0, invalid 0" in real
    assert Link.objects.count() == 20_000
    assert set(Link.objects.values_list("normalized_url", flat=True)) == set(lines)
