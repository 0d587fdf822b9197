from __future__ import annotations

import codecs

import pytest

from ingestion.lib.importers import ImportFormatError, parse_import

BOOKMARKS = """<!DOCTYPE NETSCAPE-Bookmark-file-1>
<!-- This is an automatically generated file. -->
<META HTTP-EQUIV="Content-Type" CONTENT="text/html; charset=UTF-8">
<TITLE>Bookmarks</TITLE>
<H1>Bookmarks</H1>
<DL><p>
    <DT><H3 ADD_DATE="1500000000" PERSONAL_TOOLBAR_FOLDER="true">Toolbar</H3>
    <DL><p>
        <DT><A HREF="https://example.com/top" ADD_DATE="1577836800" TAGS="news,daily">Top &amp; news</A>
        <DT><H3>Tech</H3>
        <DL><p>
            <DT><A HREF="https://docs.python.org/3/" ADD_DATE="1600000000">Python <b>docs</b></A>
            <DT><H3>Deep</H3>
            <DL><p>
                <DT><A HREF='https://example.org/deep?a=1&amp;b=2'>Deep link</A>
            </DL><p>
            <DT><A HREF="javascript:void(0)">Bookmarklet</A>
        </DL><p>
        <DT><A HREF="https://example.net/after-tech">After tech</A>
    </DL><p>
    <DT><A HREF="place:sort=8">Recent</A>
    <DT><A>No href</A>
    <DT><A HREF="https://example.com/root">Root</A>
</DL><p>
"""


def test_bookmarks_export_with_nested_folders_keeps_every_link_and_its_folder():
    result = parse_import(BOOKMARKS.encode(), filename="bookmarks.html")
    assert result.format == "bookmarks"
    assert [(link.url, link.title, link.folder) for link in result.links] == [
        ("https://example.com/top", "Top & news", "Toolbar"),
        ("https://docs.python.org/3/", "Python docs", "Toolbar/Tech"),
        ("https://example.org/deep?a=1&b=2", "Deep link", "Toolbar/Tech/Deep"),
        ("https://example.net/after-tech", "After tech", "Toolbar"),
        ("https://example.com/root", "Root", ""),
    ]
    top = result.links[0]
    assert top.tags == ["news", "daily"]
    assert top.added_at == "2020-01-01T00:00:00+00:00"
    assert result.links[1].added_at == "2020-09-13T12:26:40+00:00"


def test_bookmarks_without_a_usable_url_are_errors_with_their_line():
    result = parse_import(BOOKMARKS.encode())
    assert result.errors == [
        "line 17: not an http(s) URL: 'javascript:void(0)'",
        "line 21: not an http(s) URL: 'place:sort=8'",
        "line 22: bookmark 'No href' has no URL",
    ]


def test_pocket_export_is_recognized_with_tags_and_time():
    data = (
        b"title,url,time_added,tags,status\n"
        b'"A ""quoted, title""",https://example.com/a,1577836800,python|web,unread\n'
        b"Second,https://example.com/b,1577836900,,archive\n"
        b"Broken,,1577836900,,unread\n"
    )
    result = parse_import(data, filename="part_000000.csv")
    assert result.format == "pocket"
    assert [(link.url, link.title, link.tags) for link in result.links] == [
        ("https://example.com/a", 'A "quoted, title"', ["python", "web"]),
        ("https://example.com/b", "Second", []),
    ]
    assert result.links[0].added_at == "2020-01-01T00:00:00+00:00"
    assert result.errors == ["line 4: no URL"]


def test_csv_with_a_url_column_in_any_case_and_position():
    data = b"Name;Tags;URL\nFirst;a, b;https://example.com/1\n\nSecond;;http://example.com/2\nThird;;not a url\n"
    result = parse_import(data, filename="links.csv")
    assert result.format == "csv"
    assert [(link.url, link.title, link.tags) for link in result.links] == [
        ("https://example.com/1", "First", ["a", "b"]),
        ("http://example.com/2", "Second", []),
    ]
    assert result.errors == ["line 5: not a URL: 'not a url'"]


def test_csv_row_numbers_account_for_multiline_quoted_fields():
    data = b'url,title\nhttps://example.com/1,"two\nlines"\nnope,x\n'
    result = parse_import(data)
    assert len(result.links) == 1
    assert result.errors == ["line 4: not a URL: 'nope'"]


def test_csv_file_without_a_url_column_is_a_format_error():
    with pytest.raises(ImportFormatError, match="no 'url' column"):
        parse_import(b"link,title\nhttps://example.com,x\n", filename="export.csv")


def test_plain_text_skips_blank_lines_and_comments_and_reports_the_rest():
    data = b"# my links\n\nhttps://example.com/a\n  http://example.com/b  \nwww.example.com/c\njust words\nftp://x/y\n"
    result = parse_import(data, filename="links.txt")
    assert result.format == "text"
    assert [link.url for link in result.links] == [
        "https://example.com/a",
        "http://example.com/b",
        "https://www.example.com/c",
    ]
    assert result.errors == ["line 6: not a URL: 'just words'", "line 7: not an http(s) URL: 'ftp://x/y'"]


def test_utf8_bom_and_latin1_files_are_decoded():
    with_bom = codecs.BOM_UTF8 + "url,title\nhttps://example.com/a,Café\n".encode()
    result = parse_import(with_bom)
    assert result.format == "csv"
    assert result.links[0].title == "Café"
    latin1 = "url,title\nhttps://example.com/a,Café\n".encode("latin-1")
    assert parse_import(latin1).links[0].title == "Café"


def test_a_20000_line_text_file_loses_nothing():
    lines = []
    for i in range(20_000):
        lines.append(f"https://example.com/article/{i}" if i % 100 else f"broken line {i}")
    result = parse_import("\n".join(lines).encode())
    assert len(result.links) + len(result.errors) == 20_000
    assert len(result.errors) == 200
    assert result.links[0].url == "https://example.com/article/1"
    assert result.errors[1] == "line 101: not a URL: 'broken line 100'"


def test_a_20000_entry_bookmarks_file_loses_nothing():
    entries = "\n".join(f'<DT><A HREF="https://example.com/{i}" ADD_DATE="1600000000">T{i}</A>' for i in range(20_000))
    data = f"<!DOCTYPE NETSCAPE-Bookmark-file-1>\n<DL><p>\n{entries}\n</DL><p>\n".encode()
    result = parse_import(data)
    assert len(result.links) == 20_000 and result.errors == []
    assert result.links[-1].title == "T19999"


@pytest.mark.parametrize("data", [b"", b"  \n\n  "])
def test_an_empty_file_is_a_format_error(data):
    with pytest.raises(ImportFormatError, match="file is empty"):
        parse_import(data)


def test_a_binary_file_is_a_format_error():
    with pytest.raises(ImportFormatError, match="binary"):
        parse_import(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
