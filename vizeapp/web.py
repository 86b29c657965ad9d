"""What the web server serves (Procfile's web, `manage.py serve`): vizeapp's WSGI
application, in a process that has loaded the models of the tasks' active runs before it
takes requests, so that the first classify of each costs what every other does, not a
model load. granian imports this in each of its worker processes."""

import gc
import logging

from django.db import DatabaseError, connections

from vizeapp.wsgi import application

logger = logging.getLogger(__name__)

__all__ = ["application"]


def load_models_ahead():
    """A database that does not answer yet must not keep the site from starting: each
    model then loads at its first classify, as it would without this."""
    from tasks import predictions  # its models need the apps that application set up

    try:
        predictions.preload()
    except DatabaseError:
        logger.exception("The active runs' models were not loaded ahead")
    connections.close_all()  # requests run on granian's threads, with connections of their own


load_models_ahead()
# What is loaded by now (Django, the models, their libraries: about 107,000 objects) lives
# as long as the process: the collector's full passes leave it alone. A pass over it held
# a classify up by 69 ms; such passes came once in a few thousand requests.
gc.freeze()
