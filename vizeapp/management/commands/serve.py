"""Run the whole site locally: the web server, two RQ workers (one for training, one for
the background embedding and packaging) and, when REDIS_URL is unset, the embedded Redis
they share. Ctrl-C stops everything it started.

A second copy on one machine needs a port and data of its own (`make run PORT=8001`
from another clone, or VIZE_VAR_DIR=var-8001 in the same one): its var/ holds its
database and its Redis socket."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from vizeapp import embedded_redis


class Command(BaseCommand):
    help = "Start the web server and the workers (and the embedded Redis if REDIS_URL is unset)."

    def add_arguments(self, parser):
        port = os.environ.get("PORT") or "8000"
        parser.add_argument("--bind", default=f"127.0.0.1:{port}", help="HOST:PORT ($PORT)")
        parser.add_argument("--web-workers", type=int, default=2)
        # More threads than cores: a request waiting for an inference slot waits inside
        # Django, where tasks/throttling.py can answer 503 at once when too many wait,
        # instead of in granian's queue where nobody can. (granian warns as it starts that
        # this is many threads for few cores: it is meant.)
        parser.add_argument("--threads", type=int, default=16)

    def handle(self, *args, bind, web_workers, threads, **options):
        host, port = listening_address(bind)
        children = []
        if not os.environ.get("REDIS_URL"):
            if embedded_redis.answers(settings.EMBEDDED_REDIS_SOCKET):
                raise CommandError(
                    f"Another copy of vizeapp is running on {settings.VAR_DIR}. Stop it, or "
                    "give this one data of its own: VIZE_VAR_DIR=var-8001 make run PORT=8001"
                )
            children.append(embedded_redis.start(settings.EMBEDDED_REDIS_SOCKET, settings.VAR_DIR))
            self.stdout.write(f"Embedded Redis on {settings.EMBEDDED_REDIS_SOCKET}")
        python = sys.executable
        web = [
            *(python, "-m", "granian", "--interface=wsgi", "vizeapp.web:application"),
            *(f"--host={host}", f"--port={port}"),
            *(f"--workers={web_workers}", f"--blocking-threads={threads}"),
            *("--respawn-failed-workers", "--workers-kill-timeout=10", "--access-log"),
        ]
        # Each child leads a process group of its own: Ctrl-C reaches this command
        # alone, and stopping a group takes a child's own workers with it.
        children.append(subprocess.Popen(web, start_new_session=True))
        # A worker of its own for training: pressed right after an upload, a training
        # must not wait behind that upload's embedding or the last run's packaging; and
        # one for the suggestions, which follow each move within seconds.
        worker = [python, "manage.py", "rqworker", "--worker-class", "tasks.worker.Worker"]
        for queue in ("training", "default", "suggestions"):
            # The default queue's worker also runs RQ's scheduler, which queues the jobs
            # due later (a webhook's next attempt) when their time comes.
            scheduler = ["--with-scheduler"] if queue == "default" else []
            children.append(subprocess.Popen([*worker, *scheduler, queue], start_new_session=True))
        self.stdout.write(self.style.SUCCESS(f"vizeapp is running at http://{bind}/"))
        self.stdout.write("Press Ctrl-C to stop the site, the workers and Redis.")

        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.2)
        # Redis goes last so that the worker can finish talking to it.
        for child in reversed(children):
            stop_group(child)
        if not stopping:
            sys.exit("A process of the site exited; everything was stopped.")


def listening_address(bind):
    """(address, port) of HOST:PORT as granian takes them, checked free. granian's
    workers each listen with SO_REUSEPORT, so a second server on a port in use would not
    fail as it starts: it would quietly take part of the first one's requests."""
    host, _, port = bind.rpartition(":")
    if not host or not port.isdigit():
        raise CommandError(f"--bind takes HOST:PORT, such as 127.0.0.1:8000, not {bind!r}.")
    try:
        family, kind, _, _, address = socket.getaddrinfo(
            host.strip("[]"), int(port), type=socket.SOCK_STREAM
        )[0]
    except socket.gaierror as failure:
        raise CommandError(f"--bind {bind}: {failure.strerror}.") from None
    with socket.socket(family, kind) as probe:
        # Connections of a server stopped a moment ago may linger on the port (TIME_WAIT).
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as failure:
            raise CommandError(
                f"{bind} is taken ({failure.strerror}): stop what listens there, or serve "
                "on another port: make run PORT=8001"
            ) from None
    return address[0], int(port)


def stop_group(child, timeout=15):
    """SIGTERM to the child's process group, SIGKILL if it is still there after timeout."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGTERM)
    try:
        child.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()
