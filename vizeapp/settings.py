"""Settings for vizeapp, read from the environment.

Every value has a safe local default so that a fresh checkout runs with nothing to
configure: SQLite and an embedded Redis under var/, DEBUG off, local hosts only.
"""

import ipaddress
import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name, default=""):
    return os.environ.get(name, default)


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def env_int(name, default):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from None


def env_list(name, default):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_networks(name):
    """IP networks ("10.0.0.0/8, 192.168.1.5"), refused at start when one is not."""
    try:
        return [str(ipaddress.ip_network(network)) for network in env_list(name, [])]
    except ValueError as error:
        raise ImproperlyConfigured(f"{name}: {error}") from None


VAR_DIR = Path(env_str("VIZE_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def local_secret_key():
    """A key generated once into var/, so sessions survive restarts of a local install."""
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(50))
    return path.read_text().strip()


def secret_key():
    """SECRET_KEY from the environment, refused when weak by Django's own measure (at
    least 50 characters, 5 different ones, not the django-insecure- placeholder); a
    local install without one gets a key generated once into var/."""
    key = env_str("SECRET_KEY")
    if not key:
        return local_secret_key()
    if len(key) < 50 or len(set(key)) < 5 or key.startswith("django-insecure-"):
        raise ImproperlyConfigured(
            "SECRET_KEY is too weak to sign sessions: use at least 50 random characters, "
            "e.g. python -c 'import secrets; print(secrets.token_urlsafe(50))'"
        )
    return key


DEBUG = env_bool("DEBUG")
SECRET_KEY = secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "axes",
    "django_htmx",
    "django_rq",
    "ninja",
    "vizeapp",
    "tasks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "tasks.throttling.ShedClassifyLoad",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "vizeapp.languages.PageLocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "vizeapp.urls"
WSGI_APPLICATION = "vizeapp.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Each web thread keeps its connection between requests, SQLite's too: opening one
# (for SQLite, the file and its pragmas) cost 0.7 ms of every classify call.
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
        conn_max_age=60,
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while the worker writes; IMMEDIATE takes the write
    # lock up front instead of failing with "database is locked" half-way through.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # A file, not the in-memory default: concurrent tests then wait on locks as the
    # real database does, instead of failing with "database table is locked".
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis for the job queues. Unset means the embedded server that `manage.py serve`
# starts on a socket in var/ (vizeapp/embedded_redis.py).
EMBEDDED_REDIS_SOCKET = VAR_DIR / "redis.sock"
REDIS_URL = env_str("REDIS_URL") or f"unix://{EMBEDDED_REDIS_SOCKET}?db=0"


def with_connect_timeout(url, seconds=2):
    """An unreachable Redis answers "unavailable" in seconds, not when the OS gives up."""
    if "socket_connect_timeout=" in url:
        return url
    return f"{url}{'&' if '?' in url else '?'}socket_connect_timeout={seconds}"


RQ_QUEUES = {
    "default": {"URL": with_connect_timeout(REDIS_URL), "DEFAULT_TIMEOUT": 600},
    "training": {"URL": with_connect_timeout(REDIS_URL), "DEFAULT_TIMEOUT": 3600},
    "suggestions": {"URL": with_connect_timeout(REDIS_URL), "DEFAULT_TIMEOUT": 300},
}
RQ = {"COMMIT_MODE": "on_db_commit"}

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "tasks:list"
LOGOUT_REDIRECT_URL = "login"

# Sign-in throttling: five failures for one username from one address lock that pair
# out for fifteen minutes.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = 0.25
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_RESET_ON_SUCCESS = True

# English by default; French and Simplified Chinese from the browser or the switch
# (vizeapp/languages.py). The catalogues in locale/ compile with compile_translations.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "Français"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "vizeapp.storage.AtomicFileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# Photos and models on S3-compatible object storage (AWS S3, MinIO, Ceph, R2) when a
# bucket is named, so that web and worker machines share them. Credentials come the
# usual boto3 ways: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or the machine's role.
VIZE_S3_BUCKET = env_str("VIZE_S3_BUCKET")
if VIZE_S3_BUCKET:
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": VIZE_S3_BUCKET,
            "endpoint_url": env_str("VIZE_S3_ENDPOINT_URL") or None,
            "region_name": env_str("VIZE_S3_REGION") or None,
            "location": env_str("VIZE_S3_PREFIX"),
            "file_overwrite": False,
        },
    }
# Local copies of stored files for the code that needs paths; only used with S3.
VIZE_STORAGE_CACHE = Path(env_str("VIZE_STORAGE_CACHE", str(VAR_DIR / "storage-cache")))
# The jobs' workspaces (tasks/workspaces.py): a training's files, a zip being built.
VIZE_WORK_DIR = Path(env_str("VIZE_WORK_DIR", str(VAR_DIR / "work")))

# Uploads: Django spools anything over 2.5 MB to a temporary file, so a large zip never
# sits in memory. The limits below are checked file by file in tasks/imports.py.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_NUMBER_FILES = 1000
VIZE_MAX_IMAGE_BYTES = env_int("VIZE_MAX_IMAGE_BYTES", 10 * 1024 * 1024)
VIZE_MAX_IMAGE_PIXELS = env_int("VIZE_MAX_IMAGE_PIXELS", 50_000_000)
VIZE_MAX_ZIP_BYTES = env_int("VIZE_MAX_ZIP_BYTES", 1024 * 1024 * 1024)
VIZE_MAX_ZIP_MEMBERS = env_int("VIZE_MAX_ZIP_MEMBERS", 10_000)
VIZE_MAX_ZIP_UNCOMPRESSED_BYTES = env_int("VIZE_MAX_ZIP_UNCOMPRESSED_BYTES", 2 * 1024**3)
VIZE_THUMBNAIL_SIZE = 256
VIZE_GRID_PAGE_SIZE = 120
VIZE_PREVIEW_MAX_FILES = 50

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG and env_bool("HTTPS"))
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env_bool("HTTPS"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

# Training runs: how long a job may take, and how long a running job may stay silent
# before the reconciler marks its run failed.
VIZE_TRAINING_TIMEOUT = env_int("VIZE_TRAINING_TIMEOUT", 3600)
VIZE_RUN_STALE_SECONDS = env_int("VIZE_RUN_STALE_SECONDS", 60)
VIZE_EMBED_ON_UPLOAD = env_bool("VIZE_EMBED_ON_UPLOAD", True)
VIZE_SUGGESTIONS = env_bool("VIZE_SUGGESTIONS", True)
# Photos classify may keep per task and day when asked (keep=unsure or all), and the days
# a kept photo waits in Unsorted for a label before it is deleted.
VIZE_KEEP_PER_DAY = env_int("VIZE_KEEP_PER_DAY", 500)
VIZE_KEEP_DAYS = env_int("VIZE_KEEP_DAYS", 30)
# Minutes a deleted photo is kept, hidden, so that the delete can be undone; the workers'
# maintenance then removes it and its files.
VIZE_UNDO_MINUTES = env_int("VIZE_UNDO_MINUTES", 10)
VIZE_MODEL_CACHE = Path(env_str("VIZE_MODEL_CACHE", str(VAR_DIR / "model-cache")))

# Classify: calls per API key per window (429 past it), and per web process the
# inferences run at once, the ones allowed to wait, and for how long (503 past them).
VIZE_CLASSIFY_LIMIT = env_int("VIZE_CLASSIFY_LIMIT", 200)
VIZE_CLASSIFY_WINDOW = env_int("VIZE_CLASSIFY_WINDOW", 10)
VIZE_INFERENCE_SLOTS = env_int("VIZE_INFERENCE_SLOTS", 2)
# One thread per inference: with several running at once, onnxruntime's threads only
# contend (bench/load.py, 10 users on 2 cores: 22 requests/s with two, 47 with one).
VIZE_INFERENCE_THREADS = env_int("VIZE_INFERENCE_THREADS", 1)
VIZE_INFERENCE_QUEUE = env_int("VIZE_INFERENCE_QUEUE", 8)
VIZE_INFERENCE_WAIT = env_int("VIZE_INFERENCE_WAIT", 10)


# Networks inside the site's own that webhooks may call as well as public addresses (an
# intranet's CI server, say); by default none: no private, loopback or link-local address.
VIZE_WEBHOOK_ALLOWED_NETWORKS = env_networks("VIZE_WEBHOOK_ALLOWED_NETWORKS")
