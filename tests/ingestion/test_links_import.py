"""links_import and POST /api/links/import, for every file format."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from ingestion.models import Link
from ingestion.services import PARSE_KIND, links_import
from tasks.models import Task
from tests.ingestion.conftest import client_for, make_user

pytestmark = pytest.mark.django_db

TEXT = b"""https://example.com/one
https://example.com/two?utm_source=newsletter
https://example.com/one#again
not a url
"""

CSV = b"""url,title,tags
https://example.com/one,The first one,"science,space"
https://example.com/two,The second one,
https://example.com/two,Again the second,
"""

BOOKMARKS = b"""<!DOCTYPE NETSCAPE-Bookmark-file-1>
<META HTTP-EQUIV="Content-Type" CONTENT="text/html; charset=UTF-8">
<TITLE>Bookmarks</TITLE>
<H1>Bookmarks</H1>
<DL><p>
    <DT><H3 ADD_DATE="1700000000">Reading</H3>
    <DL><p>
        <DT><A HREF="https://example.com/one" ADD_DATE="1700000001" TAGS="science,space">The first one</A>
        <DT><A HREF="https://example.com/two" ADD_DATE="1700000002">The second one</A>
        <DT><A HREF="javascript:alert(1)" ADD_DATE="1700000003">A bookmarklet</A>
    </DL><p>
</DL><p>
"""

POCKET = b"""title,url,time_added,tags,status
The first one,https://example.com/one,1700000001,science|space,unread
The second one,https://example.com/two,1700000002,,archive
"""

FORMATS = {
    "text": ("links.txt", TEXT, {"created": 2, "duplicate": 1, "invalid": 1}),
    "csv": ("links.csv", CSV, {"created": 2, "duplicate": 1, "invalid": 0}),
    "bookmarks": ("bookmarks.html", BOOKMARKS, {"created": 2, "duplicate": 0}),
    "pocket": ("pocket.csv", POCKET, {"created": 2, "duplicate": 0, "invalid": 0}),
}


def _counts(summary, expected):
    return {key: summary[key] for key in expected}


@pytest.mark.parametrize("name", FORMATS)
def test_import_service_reads_each_format(name, editor):
    filename, data, expected = FORMATS[name]

    summary = links_import(data=data, filename=filename, user=editor)

    assert _counts(summary, expected) == expected
    assert summary["format"]
    assert set(Link.objects.values_list("normalized_url", flat=True)) == {
        "https://example.com/one",
        "https://example.com/two",
    }
    assert Task.objects.filter(kind=PARSE_KIND).count() == 2
    assert set(Link.objects.values_list("submitted_by", flat=True)) == {editor.id}


@pytest.mark.parametrize("name", ["csv", "bookmarks", "pocket"])
def test_import_keeps_titles_and_tags_from_the_file(name):
    filename, data, _ = FORMATS[name]

    links_import(data=data, filename=filename)

    first = Link.objects.get(normalized_url="https://example.com/one")
    assert first.title == "The first one"
    assert sorted(first.tags.values_list("name", flat=True)) == ["science", "space"]


def test_dry_run_reports_the_same_counts_and_writes_nothing():
    filename, data, expected = FORMATS["text"]

    summary = links_import(data=data, filename=filename, dry_run=True)

    assert _counts(summary, expected) == expected and summary["dry_run"] is True
    assert not Link.objects.exists() and not Task.objects.exists()


def test_invalid_entries_are_listed_as_errors():
    summary = links_import(data=TEXT, filename="links.txt")

    assert summary["error_count"] >= 1
    assert any("not a url" in error for error in summary["errors"])


def test_a_second_import_of_the_same_file_only_finds_duplicates():
    links_import(data=CSV, filename="links.csv")

    summary = links_import(data=CSV, filename="links.csv")

    assert (summary["created"], summary["duplicate"]) == (0, 3)
    assert Link.objects.count() == 2


@pytest.mark.parametrize("name", FORMATS)
def test_api_import_answers_201_with_the_summary(api, name):
    filename, data, expected = FORMATS[name]

    response = api.post("/api/links/import", {"file": SimpleUploadedFile(filename, data)}, format="multipart")

    assert response.status_code == 201, response.content
    assert _counts(response.json(), expected) == expected
    # process defaults to true even though the form did not send it
    assert Task.objects.filter(kind=PARSE_KIND).count() == 2


def test_api_import_dry_run_and_no_process(api):
    response = api.post(
        "/api/links/import", {"file": SimpleUploadedFile("links.txt", TEXT), "dry_run": "true"}, format="multipart"
    )
    assert response.status_code == 201 and response.json()["dry_run"] is True
    assert not Link.objects.exists()

    response = api.post(
        "/api/links/import", {"file": SimpleUploadedFile("links.txt", TEXT), "process": "false"}, format="multipart"
    )
    assert response.status_code == 201 and response.json()["created"] == 2
    assert not Task.objects.exists()


def test_api_import_without_a_file_is_a_400_naming_it(api):
    response = api.post("/api/links/import", {"dry_run": "true"}, format="multipart")

    assert response.status_code == 400
    assert "file" in response.json()["detail"]


def test_api_import_of_an_unreadable_file_is_a_400_naming_the_file(api):
    upload = SimpleUploadedFile("image.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))

    response = api.post("/api/links/import", {"file": upload}, format="multipart")

    assert response.status_code == 400
    assert "file" in response.json()["detail"]


def test_api_import_needs_the_add_permission(db):
    upload = SimpleUploadedFile("links.txt", TEXT)
    assert client_for(None).post("/api/links/import", {"file": upload}, format="multipart").status_code == 401
    viewer = client_for(make_user("view_link", username="viewer"))
    upload = SimpleUploadedFile("links.txt", TEXT)
    assert viewer.post("/api/links/import", {"file": upload}, format="multipart").status_code == 403
    assert not Link.objects.exists()
