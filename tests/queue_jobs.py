"""Jobs that the queue tests hand to real workers."""

import time


def add(a, b):
    return a + b


def sleep(seconds):
    """A long background job, as an upload's embedding can be."""
    time.sleep(seconds)
