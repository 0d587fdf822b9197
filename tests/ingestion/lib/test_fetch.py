from __future__ import annotations

import gzip
import socket
import sys
import zlib
from collections.abc import Iterator

import pytest

from ingestion.lib.fetch import FetchError, fetch_url, is_public_address

PAGE = "<html><head><title>Hello</title></head><body><p>Hello world</p></body></html>"

# Every socket.connect() made by this process while a test runs, recorded by an audit
# hook (observing, not patching). It proves refused addresses were refused before connecting.
_connects: list[object] | None = None


def _audit(event: str, args: tuple) -> None:
    if event == "socket.connect" and _connects is not None:
        _connects.append(args[1])


sys.addaudithook(_audit)


@pytest.fixture
def connect_log() -> Iterator[list[object]]:
    global _connects
    _connects = []
    try:
        yield _connects
    finally:
        _connects = None


def connected_ips(log: list[object]) -> set[str]:
    return {address[0] for address in log if isinstance(address, tuple)}


def test_page_from_an_allowed_host_is_fetched_with_our_headers(web_server):
    url = web_server.add("/a", PAGE)
    page = fetch_url(url, allowed_hosts=[web_server.host], user_agent="kb-test/2")
    assert page.html == PAGE
    assert page.status_code == 200
    assert page.content_type == "text/html"
    assert page.encoding == "utf-8"
    assert page.final_url == url and page.url == url and page.redirects == []
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    method, path, headers = web_server.requests[0]
    assert (method, path) == ("GET", "/a")
    assert headers["User-Agent"] == "kb-test/2"
    assert "text/html" in headers["Accept"]
    assert headers["Host"] == web_server.host


def test_allowed_host_matches_without_port_and_case_insensitively(web_server):
    url = web_server.add("/a", PAGE)
    assert fetch_url(url, allowed_hosts=["  127.0.0.1 "]).html == PAGE
    localhost_url = f"http://LOCALHOST:{web_server.port}/a"
    assert fetch_url(localhost_url, allowed_hosts=["localhost"]).html == PAGE


def test_loopback_address_is_refused_without_the_allowlist_before_connecting(web_server, connect_log):
    url = web_server.add("/a", PAGE)
    with pytest.raises(FetchError) as info:
        fetch_url(url)
    assert info.value.permanent
    assert "127.0.0.1 is not public" in info.value.message
    assert connect_log == []
    assert web_server.requests == []


def test_an_allowlist_entry_for_another_port_does_not_allow_this_port(web_server):
    url = web_server.add("/a", PAGE)
    with pytest.raises(FetchError, match="not public"):
        fetch_url(url, allowed_hosts=[f"127.0.0.1:{web_server.port + 1}"])
    assert web_server.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/",
        "http://192.168.1.10:8080/admin",
        "http://172.16.5.4/",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:10.0.0.1]/",
        "http://[fd00::1]/",
        "http://[fe80::1]/",
        "http://224.0.0.1/",
        "http://2130706433/",  # 127.0.0.1 spelled as one decimal number
        "http://0x7f000001/",
        "http://localhost/",
    ],
)
def test_private_and_special_addresses_are_refused_before_any_connection(url, connect_log):
    with pytest.raises(FetchError) as info:
        fetch_url(url)
    assert info.value.permanent
    assert "not public" in info.value.message
    assert connect_log == []


def test_public_addresses_pass_the_address_check():
    import ipaddress

    assert is_public_address(ipaddress.ip_address("93.184.216.34"))
    assert is_public_address(ipaddress.ip_address("2606:4700::1111"))
    assert not is_public_address(ipaddress.ip_address("64:ff9b::a00:1"))  # NAT64 of 10.0.0.1
    assert not is_public_address(ipaddress.ip_address("2002:a00:1::"))  # 6to4 of 10.0.0.1


@pytest.mark.parametrize(
    "url",
    ["javascript:alert(1)", "file:///etc/passwd", "ftp://example.com/", "data:text/html,hi", "gopher://x/"],
)
def test_non_http_schemes_are_refused_permanently(url, connect_log):
    with pytest.raises(FetchError, match="is not allowed; use http or https") as info:
        fetch_url(url)
    assert info.value.permanent
    assert connect_log == []


def test_redirect_from_an_allowed_host_to_a_private_address_is_refused(web_server, connect_log):
    web_server.redirect("/go", "http://10.0.0.1/admin")
    with pytest.raises(FetchError, match="10.0.0.1 is not public") as info:
        fetch_url(web_server.url("/go"), allowed_hosts=[web_server.host])
    assert info.value.permanent
    assert connected_ips(connect_log) == {"127.0.0.1"}
    assert web_server.paths_requested() == ["/go"]


def test_redirect_to_a_loopback_host_that_is_not_allowed_is_refused(web_server, web_server_factory):
    internal = web_server_factory()
    internal.add("/secret", PAGE)
    web_server.redirect("/go", f"http://localhost:{internal.port}/secret")
    with pytest.raises(FetchError, match="not public"):
        fetch_url(web_server.url("/go"), allowed_hosts=[web_server.host])
    assert internal.requests == []


def test_redirects_are_followed_and_each_hop_revalidated(web_server, web_server_factory):
    other = web_server_factory()
    final = other.add("/final", PAGE)
    web_server.redirect("/one", "/two", status=301)
    web_server.redirect("/two", final, status=307)
    page = fetch_url(web_server.url("/one"), allowed_hosts=[web_server.host, other.host])
    assert page.final_url == final
    assert page.redirects == [web_server.url("/one"), web_server.url("/two")]
    assert web_server.paths_requested() == ["/one", "/two"]
    assert other.paths_requested() == ["/final"]


def test_too_many_redirects_fail_permanently(web_server):
    for i in range(10):
        web_server.redirect(f"/r{i}", f"/r{i + 1}")
    with pytest.raises(FetchError, match=r"too many redirects \(more than 3\)") as info:
        fetch_url(web_server.url("/r0"), allowed_hosts=[web_server.host], max_redirects=3)
    assert info.value.permanent
    assert len(web_server.requests) == 4


def test_redirect_loop_stops_at_the_limit(web_server):
    web_server.redirect("/loop", "/loop")
    with pytest.raises(FetchError, match="too many redirects"):
        fetch_url(web_server.url("/loop"), allowed_hosts=[web_server.host])


def test_non_html_content_type_is_refused_permanently(web_server):
    url = web_server.add("/doc.pdf", b"%PDF-1.7", content_type="application/pdf")
    with pytest.raises(FetchError, match="unsupported content type application/pdf") as info:
        fetch_url(url, allowed_hosts=[web_server.host])
    assert info.value.permanent


def test_xhtml_is_accepted(web_server):
    url = web_server.add("/x", PAGE, content_type="application/xhtml+xml; charset=utf-8")
    assert fetch_url(url, allowed_hosts=[web_server.host]).content_type == "application/xhtml+xml"


@pytest.mark.parametrize(("status", "permanent"), [(404, True), (410, True), (403, True), (408, False), (429, False)])
def test_client_errors_are_permanent_except_timeout_and_rate_limit(web_server, status, permanent):
    url = web_server.add("/e", "nope", status=status)
    with pytest.raises(FetchError) as info:
        fetch_url(url, allowed_hosts=[web_server.host])
    assert info.value.message == f"HTTP {status} from {url}"
    assert info.value.permanent is permanent
    assert info.value.status_code == status


def test_server_errors_are_retryable_and_carry_retry_after(web_server):
    url = web_server.add("/e", "busy", status=503, headers={"Retry-After": "120"})
    with pytest.raises(FetchError, match="HTTP 503") as info:
        fetch_url(url, allowed_hosts=[web_server.host])
    assert not info.value.permanent
    assert info.value.retry_after == 120


def test_body_over_the_declared_length_limit_is_refused(web_server):
    url = web_server.add("/big", "<p>" + "x" * 300_000 + "</p>")
    with pytest.raises(FetchError, match="response body exceeds 256 KB limit") as info:
        fetch_url(url, allowed_hosts=[web_server.host], max_bytes=256 * 1024)
    assert info.value.permanent


def test_endless_body_is_aborted_past_the_limit(web_server):
    url = web_server.add_endless("/endless")
    with pytest.raises(FetchError, match="response body exceeds 1 MB limit"):
        fetch_url(url, allowed_hosts=[web_server.host], max_bytes=1024 * 1024)


def test_default_limit_is_five_megabytes(web_server):
    url = web_server.add_endless("/endless")
    with pytest.raises(FetchError, match="response body exceeds 5 MB limit"):
        fetch_url(url, allowed_hosts=[web_server.host])


def test_gzip_body_is_decompressed(web_server):
    url = web_server.add("/gz", gzip.compress(PAGE.encode()), headers={"Content-Encoding": "gzip"})
    page = fetch_url(url, allowed_hosts=[web_server.host])
    assert page.html == PAGE
    assert web_server.requests[0][2]["Accept-Encoding"] == "gzip, deflate"


def test_deflate_body_is_decompressed_with_or_without_zlib_header(web_server):
    web_server.add("/z", zlib.compress(PAGE.encode()), headers={"Content-Encoding": "deflate"})
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    web_server.add("/raw", raw.compress(PAGE.encode()) + raw.flush(), headers={"Content-Encoding": "deflate"})
    assert fetch_url(web_server.url("/z"), allowed_hosts=[web_server.host]).html == PAGE
    assert fetch_url(web_server.url("/raw"), allowed_hosts=[web_server.host]).html == PAGE


def test_gzip_bomb_fails_with_a_clear_message(web_server):
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 1024 * 1024  # small on the wire, 64 MB once inflated
    url = web_server.add("/bomb", bomb, headers={"Content-Encoding": "gzip"})
    with pytest.raises(FetchError, match="decompressed response body exceeds 5 MB limit") as info:
        fetch_url(url, allowed_hosts=[web_server.host])
    assert info.value.permanent


def test_corrupt_gzip_body_fails_permanently(web_server):
    url = web_server.add("/bad", b"not gzip at all", headers={"Content-Encoding": "gzip"})
    with pytest.raises(FetchError, match="not valid gzip data"):
        fetch_url(url, allowed_hosts=[web_server.host])


def test_slow_headers_hit_the_total_timeout(web_server):
    url = web_server.add("/slow", PAGE, delay=30)
    with pytest.raises(FetchError, match="timed out") as info:
        fetch_url(url, allowed_hosts=[web_server.host], total_timeout=0.5)
    assert not info.value.permanent


def test_dripping_body_hits_the_total_timeout_even_though_every_read_succeeds(web_server):
    url = web_server.add_slow("/drip", interval=0.05)
    with pytest.raises(FetchError, match="timed out reading the body") as info:
        fetch_url(url, allowed_hosts=[web_server.host], total_timeout=0.5)
    assert not info.value.permanent


def test_connection_refused_is_retryable(web_server_factory):
    server = web_server_factory()
    server.close()
    with pytest.raises(FetchError, match="cannot connect") as info:
        fetch_url(server.url("/"), allowed_hosts=[server.host])
    assert not info.value.permanent


def test_charset_comes_from_the_content_type_header(web_server):
    body = "<html><body><p>Café “naïve”</p></body></html>".encode("cp1252")
    url = web_server.add("/c", body, content_type="text/html; charset=windows-1252")
    page = fetch_url(url, allowed_hosts=[web_server.host])
    assert page.encoding == "cp1252"
    assert "Café “naïve”" in page.html


def test_latin1_label_is_decoded_as_windows_1252_like_browsers_do(web_server):
    body = "<p>“quoted” – dash</p>".encode("cp1252")
    url = web_server.add("/c", body, content_type="text/html; charset=ISO-8859-1")
    assert "“quoted” – dash" in fetch_url(url, allowed_hosts=[web_server.host]).html


def test_charset_comes_from_meta_tags_when_the_header_has_none(web_server):
    text = "Привет, мир"
    web_server.add("/m1", f'<html><head><meta charset="koi8-r"></head><body>{text}</body></html>'.encode("koi8_r"))
    web_server.add(
        "/m2",
        (
            '<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1251">'
            f"</head><body>{text}</body></html>"
        ).encode("cp1251"),
    )
    for path in ("/m1", "/m2"):
        route = web_server.routes[path]
        route.content_type = "text/html"
        page = fetch_url(web_server.url(path), allowed_hosts=[web_server.host])
        assert text in page.html, path


def test_undeclared_non_utf8_bytes_fall_back_to_windows_1252(web_server):
    body = "<html><body><p>L’été à Paris – très agréable</p></body></html>".encode("cp1252")
    url = web_server.add("/c", body, content_type="text/html")
    page = fetch_url(url, allowed_hosts=[web_server.host])
    assert page.encoding == "cp1252"
    assert "L’été à Paris – très agréable" in page.html


def test_undeclared_utf8_is_detected(web_server):
    url = web_server.add("/c", "<html><body>日本語のテキスト</body></html>", content_type="text/html")
    assert "日本語のテキスト" in fetch_url(url, allowed_hosts=[web_server.host]).html


def test_a_resolver_failure_is_reported_with_the_host_name():
    with pytest.raises(FetchError, match="cannot resolve host no-such-host.invalid"):
        fetch_url("http://no-such-host.invalid/")


def test_connection_goes_to_the_address_that_was_checked(web_server, connect_log):
    url = web_server.add("/a", PAGE)
    fetch_url(url, allowed_hosts=[web_server.host])
    assert connect_log == [("127.0.0.1", web_server.port)]
    assert socket.gethostbyname("127.0.0.1") == "127.0.0.1"
