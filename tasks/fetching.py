"""Fetching an image from a URL someone sent, without letting them reach inside the
network: every address the name resolves to must be public, the connection goes to the
address that was checked (no second DNS answer), and each redirect is checked again.
Webhooks (tasks/webhooks.py) call out through the same check."""

import http.client
import ipaddress
import socket
import ssl
from urllib.parse import urljoin, urlsplit

MAX_REDIRECTS = 3
TIMEOUT = 10


class FetchRefused(Exception):
    """Why the URL was not fetched, worded for the person who sent it."""


def public_address(address):
    ip = ipaddress.ip_address(address)
    return ip.is_global and not ip.is_multicast


class PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host, port, address):
        super().__init__(host, port, timeout=TIMEOUT)
        self.address = address

    def connect(self):
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host, port, address):
        super().__init__(host, port, timeout=TIMEOUT, context=ssl.create_default_context())
        self.address = address

    def connect(self):
        raw = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)


def fetch_image(url, max_bytes, is_allowed=public_address):
    """(bytes, final url) of url (http or https): at most max_bytes, after redirects."""
    for _ in range(MAX_REDIRECTS + 1):
        response = request(url, is_allowed)
        if response.status in (301, 302, 303, 307, 308):
            location = response.getheader("Location")
            response.close()
            if not location:
                raise FetchRefused("the server redirected without saying where")
            url = urljoin(url, location)
            continue
        if response.status != 200:
            response.close()
            raise FetchRefused(f"the server answered {response.status}")
        data = response.read(max_bytes + 1)
        response.close()
        if len(data) > max_bytes:
            raise FetchRefused(f"more than {max_bytes // 1024 // 1024} MB")
        return data, url
    raise FetchRefused(f"more than {MAX_REDIRECTS} redirects")


def checked_address(url, is_allowed=public_address):
    """(scheme, host, port, the address to connect to) of an http or https URL whose
    host resolves only to addresses is_allowed accepts; FetchRefused otherwise. Webhooks
    check their URLs with it too, when added and before each call."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchRefused("only http and https URLs are allowed")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, port)}
    except (socket.gaierror, UnicodeError, ValueError):
        raise FetchRefused(f"the host {parts.hostname} does not resolve") from None
    if not addresses or not all(is_allowed(address) for address in addresses):
        raise FetchRefused(f"{parts.hostname} is a private, loopback or link-local address")
    return parts.scheme, parts.hostname, port, sorted(addresses)[0]


def request(url, is_allowed, method="GET", body=None, headers=None):
    """The response of one request to url, made to the address that was checked; its
    redirects are the caller's to check (or refuse)."""
    scheme, host, port, address = checked_address(url, is_allowed)
    connection_class = PinnedHTTPSConnection if scheme == "https" else PinnedHTTPConnection
    connection = connection_class(host, port, address)
    parts = urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    try:
        connection.request(method, path, body, headers={"User-Agent": "vizeapp", **(headers or {})})
        return connection.getresponse()
    except (OSError, http.client.HTTPException) as error:
        raise FetchRefused(f"could not be reached ({error})") from None
