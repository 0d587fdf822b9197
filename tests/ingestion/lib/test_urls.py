from __future__ import annotations

import pytest

from ingestion.lib.urls import InvalidURL, normalize_url, url_domain


def test_tracking_parameters_are_removed_and_others_keep_their_order():
    url = "https://example.com/a?utm_source=x&b=2&fbclid=1&a=1&UTM_Campaign=y&gclid=3&_ga=4&ref_src=twsrc&z=&igshid=5"
    assert normalize_url(url) == "https://example.com/a?b=2&a=1&z="


@pytest.mark.parametrize("param", ["dclid", "msclkid", "mc_cid", "mc_eid", "yclid", "utm_medium", "utm_term"])
def test_each_known_tracking_parameter_is_removed(param):
    assert normalize_url(f"https://example.com/?{param}=abc&id=7") == "https://example.com/?id=7"


def test_query_values_keep_their_spelling():
    assert normalize_url("https://example.com/s?q=a+b&flag&x=%2F") == "https://example.com/s?q=a+b&flag&x=%2F"


def test_scheme_and_host_are_lower_cased_but_path_is_not():
    assert normalize_url("HTTPS://WWW.Example.COM/Some/Path") == "https://www.example.com/Some/Path"


def test_default_ports_are_dropped_and_others_kept():
    assert normalize_url("http://example.com:80/x") == "http://example.com/x"
    assert normalize_url("https://example.com:443/x") == "https://example.com/x"
    assert normalize_url("https://example.com:80/x") == "https://example.com:80/x"
    assert normalize_url("http://example.com:8080") == "http://example.com:8080/"


def test_fragment_is_dropped_and_empty_path_becomes_slash():
    assert normalize_url("https://example.com#section") == "https://example.com/"
    assert normalize_url("https://example.com/a?b=1#top") == "https://example.com/a?b=1"


def test_surrounding_whitespace_is_stripped():
    assert normalize_url("  \thttps://example.com/a \n") == "https://example.com/a"


def test_unicode_host_is_idna_encoded_and_unicode_path_percent_encoded():
    assert normalize_url("https://Bücher.example/café") == "https://xn--bcher-kva.example/caf%C3%A9"


def test_normalization_is_idempotent_and_deterministic():
    urls = ["HTTP://Example.com:80/a b?utm_source=x&q=1#f", "https://bücher.example/?a=1&b=2", "http://[::1]:8080/p"]
    for url in urls:
        once = normalize_url(url)
        assert normalize_url(once) == once
        assert normalize_url(url) == once


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("javascript:alert(1)", "scheme 'javascript' is not allowed; use http or https"),
        ("JavaScript:alert(1)", "scheme 'javascript' is not allowed; use http or https"),
        ("file:///etc/passwd", "scheme 'file' is not allowed; use http or https"),
        ("data:text/html,<script>x</script>", "scheme 'data' is not allowed"),
        ("ftp://example.com/file", "scheme 'ftp' is not allowed"),
        ("example.com/page", "URL has no scheme"),
        ("http://", "URL has no host"),
        ("https:///path", "URL has no host"),
        ("http://example.com:99999/", "invalid port"),
        ("http://example.com:abc/", "invalid port"),
        ("http://example.com:0/", "invalid port"),
        ("http://exa mple.com/", "not allowed"),
        ("https://example.com/\x00a", "control characters"),
        ("https://example.com/a\r\nSet-Cookie: x", "control characters"),
        ("https://user:secret@example.com/", "user name or password"),
        ("", "URL is empty"),
        ("   ", "URL is empty"),
    ],
)
def test_invalid_urls_are_rejected_with_a_clear_reason(url, reason):
    with pytest.raises(InvalidURL) as info:
        normalize_url(url)
    assert reason in str(info.value)


def test_a_100_kb_url_is_rejected_by_length():
    url = "https://example.com/?q=" + "a" * 100_000
    with pytest.raises(InvalidURL, match="characters long; the limit is 2048"):
        normalize_url(url)


def test_max_length_is_configurable():
    url = "https://example.com/" + "a" * 100
    with pytest.raises(InvalidURL):
        normalize_url(url, max_length=50)
    assert normalize_url(url, max_length=200) == url


def test_invalid_url_is_a_value_error():
    assert issubclass(InvalidURL, ValueError)


def test_domain_drops_www_port_and_case():
    assert url_domain("https://WWW.Example.com:8080/a") == "example.com"
    assert url_domain("https://news.example.co.uk/") == "news.example.co.uk"
    assert url_domain("not a url") == ""
