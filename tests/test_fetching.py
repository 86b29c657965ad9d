"""Fetching an image by URL for the Watson classify call: only public addresses, checked
again at every redirect, and never more bytes than the limit."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tasks.fetching import FetchRefused, fetch_image, public_address
from tests.images import png

PICTURE = png()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/picture.png":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(PICTURE)
        elif self.path == "/inside":
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.2:{self.server.server_port}/picture.png")
            self.end_headers()
        else:
            self.send_response(404)
            self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()


def only(address):
    """Treat this one address as if it were public."""
    return lambda candidate: candidate == address


def test_an_allowed_address_is_fetched(server):
    url = f"{server}/picture.png"
    assert fetch_image(url, 1_000_000, only("127.0.0.1")) == (PICTURE, url)


def test_loopback_is_refused_by_default(server):
    with pytest.raises(FetchRefused, match="private, loopback or link-local"):
        fetch_image(f"{server}/picture.png", 1_000_000)


def test_a_redirect_into_the_network_is_refused(server):
    with pytest.raises(FetchRefused, match=r"127\.0\.0\.2 is a private"):
        fetch_image(f"{server}/inside", 1_000_000, only("127.0.0.1"))


def test_more_than_the_limit_is_refused(server):
    with pytest.raises(FetchRefused, match="more than"):
        fetch_image(f"{server}/picture.png", 10, only("127.0.0.1"))


def test_an_error_status_is_reported(server):
    with pytest.raises(FetchRefused, match="answered 404"):
        fetch_image(f"{server}/missing", 1_000_000, only("127.0.0.1"))


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("10.1.2.3", False),
        ("192.168.0.1", False),
        ("169.254.169.254", False),
        ("::1", False),
        ("fd00::1", False),
        ("224.0.0.1", False),
    ],
)
def test_which_addresses_count_as_public(address, public):
    assert public_address(address) is public
