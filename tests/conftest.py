import os
import subprocess

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from rq import SimpleWorker

from tasks.models import Task
from tests.helpers import V1, add_images, add_pictures, shapes_zip
from vizeapp import embedded_redis


@pytest.fixture(scope="session", autouse=True)
def compiled_translations():
    """The .mo files are built from locale/'s catalogues, never committed."""
    call_command("compile_translations", verbosity=0)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Every test stores its files in a folder of its own, and reads static files
    without the manifest that `collectstatic` writes for production."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    return settings.MEDIA_ROOT


@pytest.fixture(autouse=True)
def work_dir(settings, tmp_path):
    """Every test's jobs work in a folder of its own."""
    settings.VIZE_WORK_DIR = tmp_path / "work"
    return settings.VIZE_WORK_DIR


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory):
    """Where the ONNX graphs of the base models are exported, once per test session."""
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(autouse=True)
def model_cache_setting(settings, model_cache):
    settings.VIZE_MODEL_CACHE = model_cache


@pytest.fixture(autouse=True)
def no_background_embedding(settings):
    """Uploads queue an embedding job only in the tests that ask for it."""
    settings.VIZE_EMBED_ON_UPLOAD = False


@pytest.fixture(autouse=True)
def no_background_suggestions(settings):
    """Moves and uploads queue a refresh of the suggestions only in the tests that ask."""
    settings.VIZE_SUGGESTIONS = False


@pytest.fixture
def browser_locale():
    """The language of the browser tests' chromium (its Accept-Language): its own default
    unless a test parametrizes this, as tests/test_browser_languages.py does."""
    return None


@pytest.fixture
def owner(db):
    return User.objects.create_user("owner", password="a long owner passphrase")


@pytest.fixture
def outsider(db):
    return User.objects.create_user("outsider", password="a long outsider passphrase")


@pytest.fixture
def owner_client(owner):
    client = Client()
    client.force_login(owner)
    return client


@pytest.fixture
def outsider_client(outsider):
    client = Client()
    client.force_login(outsider)
    return client


@pytest.fixture
def task(owner):
    return Task.objects.create(owner=owner, name="Ants or bees")


@pytest.fixture
def ants(task):
    return task.categories.create(name="ants")


@pytest.fixture
def bees(task):
    return task.categories.create(name="bees")


@pytest.fixture
def ant_images(task, ants):
    return add_images(task, ants, 3)


@pytest.fixture
def unsorted_images(task):
    return add_images(task, None, 2, start=10)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    folder = tmp_path_factory.mktemp("redis")
    server = embedded_redis.start(folder / "redis.sock", folder)
    yield f"unix://{folder}/redis.sock?db=0"
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture
def redis_down(settings):
    """The queues point at a port where no Redis listens. Tests using it run without
    an enclosing transaction, as requests do, so that jobs are enqueued at once."""
    settings.RQ_QUEUES = {
        name: {"URL": "redis://127.0.0.1:1/0?socket_connect_timeout=2"}
        for name in settings.RQ_QUEUES
    }


@pytest.fixture
def training_queue(settings, redis_url):
    """The training queue on a real Redis, emptied."""
    import django_rq

    settings.RQ_QUEUES = {name: {"URL": redis_url} for name in settings.RQ_QUEUES}
    queue = django_rq.get_queue("training")
    queue.empty()
    return queue


@pytest.fixture
def api_key(owner):
    """The owner's API key: its secret."""
    from tasks.models import ApiKey

    return ApiKey.issue(owner, "tests")[1]


@pytest.fixture
def api(api_key):
    """A client that sends the owner's API key, and no session."""
    return Client(HTTP_AUTHORIZATION=f"Bearer {api_key}")


@pytest.fixture
def outsider_api(outsider):
    from tasks.models import ApiKey

    return Client(HTTP_AUTHORIZATION=f"Bearer {ApiKey.issue(outsider, 'tests')[1]}")


@pytest.fixture
def discs(task):
    return task.categories.create(name="discs")


@pytest.fixture
def squares(task):
    return task.categories.create(name="squares")


@pytest.fixture
def shapes_task(task):
    discs, squares = task.categories.create(name="discs"), task.categories.create(name="squares")
    add_pictures(task, discs, "discs", 6)
    add_pictures(task, squares, "squares", 6)
    return task


@pytest.fixture
def small_disk(tmp_path):
    """A 128 MB tmpfs mounted for the test, so that a full disk is a real ENOSPC from the
    kernel: room for a Lite0 run's folder with its other formats and model zip (about
    90 MB), and no more. Mounting needs root (CI runs as root); as a normal user these
    tests skip."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs for a full disk needs root")
    mount = tmp_path / "small-disk"
    mount.mkdir()
    subprocess.run(["/usr/bin/mount", "-t", "tmpfs", "-o", "size=128m", "tmpfs", mount], check=True)
    yield mount
    subprocess.run(["/usr/bin/umount", "--lazy", mount], check=True)


@pytest.fixture
def queues(training_queue):
    import django_rq

    django_rq.get_queue("default").empty()


@pytest.fixture
def run_queues(queues, django_capture_on_commit_callbacks):
    """Run the jobs of the named queues on a real worker. What the jobs enqueue after
    their writes commit is enqueued, as it would be outside the test's transaction."""
    import django_rq

    def run(*queue_names):
        queues = [django_rq.get_queue(name) for name in queue_names]
        with django_capture_on_commit_callbacks(execute=True):
            SimpleWorker(queues, connection=queues[0].connection).work(burst=True)

    return run


@pytest.fixture
def trained(api, run_queues, django_capture_on_commit_callbacks):
    """(task code, run code) of a task trained through the API."""
    task = api.post(f"{V1}/tasks", {"name": "Discs or squares"}, "application/json").json()
    api.post(
        f"{V1}/tasks/{task['code']}/images",
        {
            "files": [SimpleUploadedFile("shapes.zip", shapes_zip())],
            "folders_as_categories": "true",
        },
    )
    with django_capture_on_commit_callbacks(execute=True):
        run = api.post(
            f"{V1}/tasks/{task['code']}/runs", {"base_model": "lite0"}, "application/json"
        )
    run_queues("training")
    return task["code"], run.json()["code"]


@pytest.fixture
def packaged(trained, run_queues):
    """trained, its model zip packaged (the other formats built and measured: 15-25 s)."""
    run_queues("default")
    return trained
