"""gunicorn's hooks for vizeapp's web processes (Procfile's web, `manage.py serve`)."""


def post_worker_init(worker):
    """Before a web process takes requests, load the models of the tasks' active runs:
    the first classify of each then costs what every other does, not a model load."""
    from django.db import connections

    from tasks import predictions

    predictions.preload()
    connections.close_all()  # requests run in other threads, with connections of their own
