"""Jobs that the queue tests hand to real workers."""


def add(a, b):
    return a + b
