"""Safe HTTP fetching of article pages: an SSRF guard in front of ``http.client``.

Links come from users, so a URL may point at the metadata service, the database or
any other internal address. Every hop of a fetch is checked before a single byte is
sent: the scheme must be http or https, and every address the host resolves to must
be public unless the host is explicitly allowed. The socket then connects to the very
address that was checked (not to whatever DNS answers a moment later), which closes
the DNS-rebinding hole a resolve-then-``requests.get`` approach leaves open.

Plain helper with no Django imports: configuration comes in as arguments.
"""

from __future__ import annotations

import codecs
import http.client
import ipaddress
import re
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

ALLOWED_SCHEMES = frozenset({"http", "https"})
DEFAULT_PORTS = {"http": 80, "https": 443}
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
HTML_CONTENT_TYPES = frozenset({"text/html", "application/xhtml+xml"})
ACCEPT_HEADER = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1"
READ_CHUNK_SIZE = 64 * 1024

# 100.64.0.0/10 (carrier-grade NAT) is neither "private" nor "global" to ipaddress,
# and IPv6 prefixes that embed an IPv4 address must be judged by that address.
_SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")
_NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")
_CONTROL_RE = re.compile(r"[\x00-\x20\x7f-\x9f]")
_META_CHARSET_RE = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_:.+-]+)""", re.IGNORECASE)
# WHATWG: browsers decode these labels as windows-1252, and so do real pages.
_CHARSET_ALIASES = {"iso-8859-1": "cp1252", "latin-1": "cp1252", "latin1": "cp1252", "ascii": "cp1252"}


class FetchError(Exception):
    """A page could not be fetched.

    ``permanent`` is True when retrying cannot help (refused address, unsupported
    content type, body too large, bad scheme, most 4xx) and False for timeouts,
    connection errors and 5xx.
    """

    def __init__(
        self, message: str, *, permanent: bool, status_code: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.status_code = status_code
        # Seconds the server asked us to wait (429/503 with Retry-After), when it said so.
        self.retry_after = retry_after


class Headers(dict[str, str]):
    """Response headers; lookups ignore case (``headers["content-type"]`` works for any spelling)."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__()
        for name, value in items:
            key = name.lower()
            # Repeated headers are combined the way RFC 9110 allows.
            self[key] = f"{self[key]}, {value}" if key in self else value

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __setitem__(self, key: str, value: str) -> None:
        super().__setitem__(key.lower(), value)

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key.lower() if isinstance(key, str) else key)

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return super().get(key.lower(), default)


@dataclass
class FetchedPage:
    """A fetched HTML page. ``redirects`` lists the URLs that answered with a redirect, in order."""

    url: str
    final_url: str
    status_code: int
    content_type: str
    encoding: str
    html: str
    headers: dict[str, str] = field(default_factory=Headers)
    redirects: list[str] = field(default_factory=list)


def format_size(num_bytes: int) -> str:
    """Human-readable limit for error messages: ``5 MB``, ``512 KB`` or ``1000 bytes``."""
    if num_bytes >= 1024 * 1024 and num_bytes % (1024 * 1024) == 0:
        return f"{num_bytes // (1024 * 1024)} MB"
    if num_bytes >= 1024 * 1024:
        return f"{num_bytes / (1024 * 1024):.1f} MB"
    if num_bytes >= 1024 and num_bytes % 1024 == 0:
        return f"{num_bytes // 1024} KB"
    return f"{num_bytes} bytes"


# --- Address checks ------------------------------------------------------------


def is_public_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True when ``address`` is globally routable: not private, loopback, link-local,
    multicast, reserved, unspecified or shared (100.64/10), also when hidden inside an
    IPv4-mapped, NAT64, 6to4 or Teredo IPv6 address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public_address(address.ipv4_mapped)
        if address in _NAT64_PREFIX:
            return is_public_address(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address.sixtofour is not None:
            return is_public_address(address.sixtofour)
        if address.teredo is not None:
            return False
    if address in _SHARED_ADDRESS_SPACE:
        return False
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def _normalize_allowed(allowed_hosts: Iterable[str]) -> frozenset[str]:
    return frozenset(entry.strip().lower().rstrip(".") for entry in allowed_hosts if entry and entry.strip())


def _host_is_allowed(host: str, port: int, allowed: frozenset[str]) -> bool:
    """``host`` is allowed by name or IP literal, with or without its port (IPv6 with or without brackets)."""
    if not allowed:
        return False
    bare = host.lower().rstrip(".")
    names = {bare}
    if ":" in bare:  # IPv6 literal
        names.add(f"[{bare}]")
    candidates = set(names)
    for name in names:
        candidates.add(f"{name}:{port}")
    if ":" in bare:
        candidates.add(f"[{bare}]:{port}")
    return not candidates.isdisjoint(allowed)


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str
    port: int
    request_path: str
    addresses: tuple[tuple[int, tuple], ...]  # (family, sockaddr) pairs, every one already checked


def _resolve_target(url: str, *, allowed: frozenset[str]) -> _Target:
    """Parse and validate one hop: scheme, host, port and every resolved address."""
    if _CONTROL_RE.search(url.strip()):
        raise FetchError(f"URL contains whitespace or control characters: {url!r}", permanent=True)
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise FetchError(f"invalid URL {url!r}: {exc}", permanent=True) from None
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise FetchError(f"scheme {scheme!r} is not allowed; use http or https", permanent=True)
    host = parts.hostname
    if not host:
        raise FetchError(f"URL has no host: {url!r}", permanent=True)
    if parts.username is not None or parts.password is not None:
        raise FetchError("URL must not contain a user name or password", permanent=True)
    port = port or DEFAULT_PORTS[scheme]
    if not 0 < port < 65536:
        raise FetchError(f"invalid port {port}", permanent=True)

    try:
        ascii_host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        raise FetchError(f"host {host!r} is not a valid domain name", permanent=True) from None

    try:
        infos = socket.getaddrinfo(ascii_host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        # "Name or service not known" will not fix itself; a failing resolver might.
        permanent = exc.errno in {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}
        raise FetchError(f"cannot resolve host {host}: {exc.strerror}", permanent=permanent) from None
    except (UnicodeError, OSError) as exc:
        raise FetchError(f"cannot resolve host {host}: {exc}", permanent=True) from None
    if not infos:
        raise FetchError(f"host {host} has no addresses", permanent=True)

    allowed_host = _host_is_allowed(host, port, allowed)
    addresses: list[tuple[int, tuple]] = []
    for family, _type, _proto, _canonname, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        ip = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
        # Every address must pass, not just the first: a host that resolves to one
        # public and one private address could otherwise be steered to the private one.
        if not allowed_host and not is_public_address(ip):
            raise FetchError(f"refusing to fetch {host}: address {ip} is not public", permanent=True)
        addresses.append((family, sockaddr))
    if not addresses:
        raise FetchError(f"host {host} has no IPv4 or IPv6 addresses", permanent=True)

    request_path = parts.path or "/"
    if parts.query:
        request_path += "?" + parts.query
    return _Target(scheme=scheme, host=ascii_host, port=port, request_path=request_path, addresses=tuple(addresses))


# --- Connections pinned to checked addresses --------------------------------------


def _connect_pinned(addresses: Sequence[tuple[int, tuple]], timeout: float) -> socket.socket:
    """Connect to the first reachable address of ``addresses`` (all of them already validated)."""
    last_error: OSError | None = None
    for family, sockaddr in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(sockaddr)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        except OSError as exc:
            sock.close()
            last_error = exc
    assert last_error is not None
    raise last_error


class PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP connection to a pre-resolved address; the Host header still names the host."""

    def __init__(self, host: str, port: int, *, addresses: Sequence[tuple[int, tuple]], timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._addresses = addresses

    def connect(self) -> None:
        self.sock = _connect_pinned(self._addresses, self.timeout)


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS connection to a pre-resolved address; SNI and certificate checks use the host name."""

    def __init__(self, host: str, port: int, *, addresses: Sequence[tuple[int, tuple]], timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._addresses = addresses

    def connect(self) -> None:
        sock = _connect_pinned(self._addresses, self.timeout)
        try:
            self.sock = self._context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


class _Deadline:
    """The total time budget of one fetch, enforced even while a read is blocked.

    Socket timeouts only bound a single ``recv``; a server dripping one byte a second
    would never trip them. A timer shuts the socket down when the budget is spent,
    which wakes up any blocked read.
    """

    def __init__(self, seconds: float) -> None:
        self.expires_at = time.monotonic() + seconds
        self.expired = False
        self._timer: threading.Timer | None = None

    def remaining(self) -> float:
        return self.expires_at - time.monotonic()

    def check(self, what: str) -> float:
        remaining = self.remaining()
        if remaining <= 0 or self.expired:
            self.expired = True
            raise FetchError(f"timed out {what}", permanent=False)
        return remaining

    def guard(self, sock: socket.socket) -> None:
        # The socket itself, not ``conn.sock``: http.client drops its reference once the
        # response headers say "Connection: close", while the response keeps reading from it.
        self.cancel()

        def expire() -> None:
            self.expired = True
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        self._timer = threading.Timer(max(self.remaining(), 0.0), expire)
        self._timer.daemon = True
        self._timer.start()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


# --- Body decoding ----------------------------------------------------------------


class _Decompressor:
    """Streams Content-Encoding gzip/deflate with a cap on the inflated size (gzip bombs)."""

    def __init__(self, encoding: str, limit: int) -> None:
        self.encoding = encoding
        self.limit = limit
        self.size = 0
        self._parts: list[bytes] = []
        if encoding in ("gzip", "x-gzip"):
            self._obj = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._obj = zlib.decompressobj(zlib.MAX_WBITS)
            self._raw_deflate_retry = True
        else:
            raise FetchError(f"unsupported content encoding {encoding}", permanent=True)

    def feed(self, data: bytes) -> None:
        while data:
            try:
                out = self._obj.decompress(data, self.limit - self.size + 1)
            except zlib.error as exc:
                # Some servers send raw deflate without the zlib header.
                if self.encoding == "deflate" and self.size == 0 and getattr(self, "_raw_deflate_retry", False):
                    self._raw_deflate_retry = False
                    self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
                    continue
                raise FetchError(f"response body is not valid {self.encoding} data: {exc}", permanent=True) from None
            self._raw_deflate_retry = False
            self._add(out)
            data = self._obj.unconsumed_tail

    def _add(self, out: bytes) -> None:
        self.size += len(out)
        if self.size > self.limit:
            raise FetchError(f"decompressed response body exceeds {format_size(self.limit)} limit", permanent=True)
        self._parts.append(out)

    def finish(self) -> bytes:
        try:
            self._add(self._obj.flush())
        except zlib.error as exc:
            raise FetchError(f"response body is not valid {self.encoding} data: {exc}", permanent=True) from None
        return b"".join(self._parts)


def _valid_codec(name: str | None) -> str | None:
    if not name:
        return None
    label = name.strip().strip("\"'").lower()
    label = _CHARSET_ALIASES.get(label, label)
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def _parse_content_type(value: str) -> tuple[str, str | None]:
    """``text/html; charset=UTF-8`` -> (``text/html``, ``UTF-8``)."""
    main, *params = value.split(";")
    charset = None
    for param in params:
        name, _, val = param.partition("=")
        if name.strip().lower() == "charset":
            charset = val.strip().strip("\"'")
    return main.strip().lower(), charset


def detect_encoding(body: bytes, header_charset: str | None) -> str:
    """Charset from the Content-Type header, else a byte-order mark, else ``<meta charset>``
    or ``<meta http-equiv>`` in the first 8 KB, else UTF-8 if it decodes, else windows-1252."""
    declared = _valid_codec(header_charset)
    if declared:
        return declared
    if body.startswith(codecs.BOM_UTF8):
        return "utf-8"
    if body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    match = _META_CHARSET_RE.search(body[:8192])
    if match:
        meta = _valid_codec(match.group(1).decode("ascii", "replace"))
        # A page cannot really be UTF-16 if we could read its meta tag as ASCII.
        if meta and not meta.startswith("utf-16"):
            return meta
    try:
        body.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by a truncated body is still UTF-8.
        if exc.start >= len(body) - 3 and exc.reason == "unexpected end of data":
            return "utf-8"
    # Undeclared non-UTF-8 pages are overwhelmingly windows-1252 (the browsers' default
    # too); statistical detectors mistake short Western text for Baltic or Cyrillic.
    return "cp1252"


def _looks_like_html(body: bytes) -> bool:
    head = body[:1024].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<?xml")) or b"<html" in head or b"<head" in head


# --- Fetch --------------------------------------------------------------------------


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def fetch_url(
    url: str,
    *,
    allowed_hosts: Iterable[str] = (),
    max_bytes: int = 5 * 1024 * 1024,
    connect_timeout: float = 5.0,
    total_timeout: float = 30.0,
    max_redirects: int = 5,
    user_agent: str = "kbmanager/1.0",
) -> FetchedPage:
    """Fetch an HTML page safely or raise :class:`FetchError`.

    Each hop (the URL and every redirect target) is validated before connecting: only
    http/https, and every resolved address public unless the host (name or IP, with or
    without ``:port``) is in ``allowed_hosts``. The socket connects to the checked
    address. Redirects are followed by hand up to ``max_redirects``; ``total_timeout``
    bounds the whole fetch including reading the body; the body (compressed and
    decompressed) may not exceed ``max_bytes``; only HTML content types are accepted.
    """
    allowed = _normalize_allowed(allowed_hosts)
    deadline = _Deadline(total_timeout)
    current = url.strip()
    redirects: list[str] = []
    try:
        while True:
            target = _resolve_target(current, allowed=allowed)
            deadline.check(f"before connecting to {target.host}")
            response, conn = _send_request(target, deadline, connect_timeout=connect_timeout, user_agent=user_agent)
            try:
                status = response.status
                location = response.getheader("Location")
                if status in REDIRECT_STATUSES and location:
                    redirects.append(current)
                    if len(redirects) > max_redirects:
                        raise FetchError(f"too many redirects (more than {max_redirects}) from {url}", permanent=True)
                    current = urljoin(current, location.strip())
                    continue
                headers = Headers(response.getheaders())
                if not 200 <= status < 300:
                    permanent = 400 <= status < 500 and status not in (408, 429)
                    raise FetchError(
                        f"HTTP {status} from {current}",
                        permanent=permanent,
                        status_code=status,
                        retry_after=_retry_after(headers.get("retry-after")),
                    )
                return _read_page(
                    response,
                    headers,
                    deadline,
                    url=url,
                    final_url=current,
                    redirects=redirects,
                    max_bytes=max_bytes,
                )
            finally:
                conn.close()
    finally:
        deadline.cancel()


def _send_request(
    target: _Target, deadline: _Deadline, *, connect_timeout: float, user_agent: str
) -> tuple[http.client.HTTPResponse, http.client.HTTPConnection]:
    connection_class = PinnedHTTPSConnection if target.scheme == "https" else PinnedHTTPConnection
    timeout = max(0.001, min(connect_timeout, deadline.remaining()))
    conn = connection_class(target.host, target.port, addresses=target.addresses, timeout=timeout)
    try:
        try:
            conn.connect()
        except TimeoutError:
            raise FetchError(f"timed out connecting to {target.host}", permanent=False) from None
        except ssl.SSLCertVerificationError as exc:
            raise FetchError(
                f"TLS certificate of {target.host} is not valid: {exc.verify_message}", permanent=True
            ) from None
        except OSError as exc:
            raise FetchError(f"cannot connect to {target.host}: {exc.strerror or exc}", permanent=False) from None
        # From here on every read is bounded by what is left of the total budget.
        conn.sock.settimeout(max(0.001, deadline.remaining()))
        deadline.guard(conn.sock)
        try:
            conn.putrequest("GET", target.request_path, skip_accept_encoding=True)
            conn.putheader("User-Agent", user_agent)
            conn.putheader("Accept", ACCEPT_HEADER)
            conn.putheader("Accept-Encoding", "gzip, deflate")
            conn.putheader("Connection", "close")
            conn.endheaders()
            response = conn.getresponse()
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            if deadline.expired or isinstance(exc, TimeoutError):
                raise FetchError(f"timed out waiting for a response from {target.host}", permanent=False) from None
            raise FetchError(f"connection to {target.host} failed: {exc}", permanent=False) from None
        except ValueError as exc:  # http.client refuses control characters in the path
            raise FetchError(f"invalid request path: {exc}", permanent=True) from None
        return response, conn
    except BaseException:
        conn.close()
        raise


def _read_page(
    response: http.client.HTTPResponse,
    headers: Headers,
    deadline: _Deadline,
    *,
    url: str,
    final_url: str,
    redirects: list[str],
    max_bytes: int,
) -> FetchedPage:
    content_type, header_charset = _parse_content_type(headers.get("content-type") or "")
    if content_type and content_type not in HTML_CONTENT_TYPES:
        raise FetchError(f"unsupported content type {content_type}", permanent=True)

    limit_message = f"response body exceeds {format_size(max_bytes)} limit"
    declared_length = headers.get("content-length")
    if declared_length and declared_length.strip().isdigit() and int(declared_length) > max_bytes:
        raise FetchError(limit_message, permanent=True)

    encoding = (headers.get("content-encoding") or "identity").strip().lower()
    decompressor = None if encoding in ("", "identity") else _Decompressor(encoding, max_bytes)
    raw_parts: list[bytes] = []
    raw_size = 0
    try:
        while True:
            deadline.check(f"reading the body of {final_url}")
            # read1 returns what has arrived instead of waiting for a full chunk, so the
            # deadline is checked between reads even when the server drips.
            chunk = response.read1(READ_CHUNK_SIZE)
            if not chunk:
                break
            raw_size += len(chunk)
            if raw_size > max_bytes:
                raise FetchError(limit_message, permanent=True)
            if decompressor is not None:
                decompressor.feed(chunk)
            else:
                raw_parts.append(chunk)
    except (TimeoutError, OSError, http.client.HTTPException) as exc:
        if deadline.expired or isinstance(exc, TimeoutError) or deadline.remaining() <= 0:
            raise FetchError(f"timed out reading the body of {final_url}", permanent=False) from None
        raise FetchError(f"connection broke while reading {final_url}: {exc}", permanent=False) from None
    if deadline.expired:
        raise FetchError(f"timed out reading the body of {final_url}", permanent=False)
    body = decompressor.finish() if decompressor is not None else b"".join(raw_parts)

    if not content_type:
        # No Content-Type at all: accept only what clearly is an HTML document.
        if not _looks_like_html(body):
            raise FetchError("unsupported content type (none declared and the body is not HTML)", permanent=True)
        content_type = "text/html"
    charset = detect_encoding(body, header_charset)
    return FetchedPage(
        url=url,
        final_url=final_url,
        status_code=response.status,
        content_type=content_type,
        encoding=charset,
        html=body.decode(charset, errors="replace"),
        headers=headers,
        redirects=redirects,
    )
