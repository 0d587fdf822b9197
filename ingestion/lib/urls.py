"""URL normalization: one canonical spelling per article so duplicates collapse to one Link.

Plain helper with no Django imports; the caller passes limits as arguments.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

ALLOWED_SCHEMES = frozenset({"http", "https"})
DEFAULT_PORTS = {"http": 80, "https": 443}

# Query parameters that only identify the campaign or click that led to a page. They
# never change the content, so keeping them would store one article under many URLs.
TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "gclsrc",
        "dclid",
        "msclkid",
        "mc_cid",
        "mc_eid",
        "igshid",
        "_ga",
        "_gl",
        "yclid",
        "ref_src",
        "ref_url",
        "twclid",
        "ttclid",
        "li_fat_id",
        "wickedid",
        "_hsenc",
        "_hsmi",
        "mkt_tok",
        "oly_anon_id",
        "oly_enc_id",
        "vero_id",
        "s_cid",
        "spm",
    }
)
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_")

# C0 controls, DEL and C1 controls: never valid in a URL and a classic way to smuggle
# a second header line or confuse a parser further down.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Characters that may appear in a hostname once IDNA-encoded (plus IPv6 literal syntax).
_HOST_RE = re.compile(r"^[a-z0-9._-]+$")
# Characters left alone when re-quoting the path and query; everything else is percent-encoded.
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
_QUERY_SAFE = _PATH_SAFE + "?"


class InvalidURL(ValueError):
    """The URL cannot be stored or fetched; ``str(exc)`` says why."""


def _is_tracking_param(name: str) -> bool:
    lowered = name.lower()
    return lowered in TRACKING_PARAMS or lowered.startswith(TRACKING_PREFIXES)


def _normalize_host(hostname: str) -> str:
    """Lower-case the host and IDNA-encode unicode labels; IPv6 literals keep their brackets."""
    if ":" in hostname:
        # An IPv6 literal (urlsplit has already stripped the brackets).
        try:
            return f"[{ipaddress.IPv6Address(hostname).compressed}]"
        except ValueError:
            raise InvalidURL(f"host {hostname!r} is not a valid IPv6 address") from None
    host = hostname.rstrip(".").lower()
    if not host:
        raise InvalidURL("URL has no host")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise InvalidURL(f"host {hostname!r} is not a valid internationalized domain name") from None
    if not _HOST_RE.match(host) or ".." in host or len(host) > 253:
        raise InvalidURL(f"host {hostname!r} contains characters that are not allowed")
    return host


def normalize_url(url: str, *, max_length: int = 2048) -> str:
    """Return the canonical form of ``url`` or raise :class:`InvalidURL` with the reason.

    Only http and https are accepted. Scheme and host are lower-cased (unicode hosts
    IDNA-encoded), the default port and the fragment dropped, tracking parameters
    removed (others keep their order) and an empty path becomes ``/``. The result is
    deterministic, so it can be a unique key.
    """
    if not isinstance(url, str):
        raise InvalidURL("URL must be a string")
    url = url.strip()
    if not url:
        raise InvalidURL("URL is empty")
    if len(url) > max_length:
        raise InvalidURL(f"URL is {len(url)} characters long; the limit is {max_length}")
    if _CONTROL_RE.search(url):
        raise InvalidURL("URL contains control characters")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise InvalidURL(f"URL cannot be parsed: {exc}") from None

    scheme = parts.scheme.lower()
    if not scheme:
        raise InvalidURL("URL has no scheme; use http or https")
    if scheme not in ALLOWED_SCHEMES:
        raise InvalidURL(f"scheme {scheme!r} is not allowed; use http or https")
    if not parts.netloc or not parts.hostname:
        raise InvalidURL("URL has no host")
    if parts.username is not None or parts.password is not None:
        # Credentials in a stored URL leak on every display, and "user@host" is a phishing trick.
        raise InvalidURL("URL must not contain a user name or password")

    try:
        port = parts.port
    except ValueError:
        raise InvalidURL("URL has an invalid port") from None
    if port == 0:
        raise InvalidURL("URL has an invalid port")

    host = _normalize_host(parts.hostname)
    netloc = host if port is None or port == DEFAULT_PORTS[scheme] else f"{host}:{port}"

    path = quote(parts.path, safe=_PATH_SAFE) or "/"
    # Parameters are kept as written (only unsafe characters get escaped): decoding and
    # re-encoding them would turn "?a+b" into "?a%20b" or "?flag" into "?flag=", which
    # some servers treat as a different page.
    query = "&".join(
        quote(segment, safe=_QUERY_SAFE)
        for segment in parts.query.split("&")
        if segment and not _is_tracking_param(unquote_plus(segment.split("=", 1)[0]))
    )

    normalized = urlunsplit((scheme, netloc, path, query, ""))
    if len(normalized) > max_length:
        raise InvalidURL(f"URL is {len(normalized)} characters long once normalized; the limit is {max_length}")
    return normalized


def url_domain(url: str) -> str:
    """The URL's host without a leading ``www.`` (lower-case, port dropped)."""
    try:
        host = urlsplit(url.strip()).hostname or ""
    except ValueError:
        return ""
    host = host.rstrip(".").lower()
    return host[4:] if host.startswith("www.") else host
