"""gunicorn's hooks for vizeapp's web processes (Procfile's web, `manage.py serve`)."""

import logging

logger = logging.getLogger(__name__)


def post_worker_init(worker):
    """Before a web process takes requests, load the models of the tasks' active runs:
    the first classify of each then costs what every other does, not a model load. A
    database that does not answer yet must not keep the site from starting: each model
    then loads at its first classify, as it would without this."""
    from django.db import DatabaseError, connections

    from tasks import predictions

    try:
        predictions.preload()
    except DatabaseError:
        logger.exception("The active runs' models were not loaded ahead")
    connections.close_all()  # requests run in other threads, with connections of their own
