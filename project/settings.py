"""Settings for the whole project, read from the environment (see .env.example)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import django
import django_stubs_ext
import environ

from project.storage_url import object_storage_from_url

# Lets classes such as ModelAdmin[Task] be written with their type argument at run time too.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A developer's .env is optional; real deployments set the environment directly.
if (BASE_DIR / ".env").is_file():
    env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="django-insecure-dev-only-key" if DEBUG else environ.Env.NOTSET)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Absolute base for links that leave the site (the download link in an export email).
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    # daphne first so that `runserver` serves ASGI (WebSockets) too.
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.humanize",  # intcomma: 1,500,000 everywhere a count is shown
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "django_rq",
    "axes",  # failed-login lockout (see AXES_* below)
    # This site's running-tasks strip (it overrides the library's template, so it comes first), the
    # library (live progress for long tasks), then the apps that declare kinds of task (kinds.py).
    "notifications",
    "live_tasks",
    "accounts",
    "posts",
    "exports",
    "imports",
    "recount",  # the example built only on django.tasks' @task (TASKS below)
]

# Content-Security-Policy: Django has it built in from 6.0 (SECURE_CSP); on 5.2 LTS, django-csp 4
# sets the same policy. One policy either way (CSP_DIRECTIVES, under Security below).
DJANGO_HAS_CSP = django.VERSION >= (6, 0)

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware" if DJANGO_HAS_CSP else "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out login into its lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"
ASGI_APPLICATION = "project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        # The web server, the worker and the scheduler write to one file at once: WAL lets readers
        # and a writer proceed together, IMMEDIATE takes the write lock up front (no upgrade
        # deadlocks), and the timeout waits for a lock instead of failing with "database is locked".
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # Keep the connections open between requests (project/sqlite_pool/), switched on by
    # project/asgi.py for daphne only, as the PostgreSQL pool below.
    if env.bool("DATABASE_POOL", default=False):
        DATABASES["default"]["ENGINE"] = "project.sqlite_pool"
else:
    # 0: Django's advice under ASGI (daphne), where persistent connections are not reused safely.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # A pool of connections (psycopg_pool), switched on by project/asgi.py for daphne only: opening
    # a connection per request or socket was ~40% of daphne's time (docs/performance.md), but workers
    # fork a work horse per job and a pool's open sockets must not be shared across a fork.
    if env.bool("DATABASE_POOL", default=False):
        DATABASES["default"]["CONN_MAX_AGE"] = 0  # pooling replaces persistent connections
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 2,
            "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=10),
            "timeout": 10,
        }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# django-axes first: it refuses a locked-out username+IP before the password is even checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "exports:list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static and uploaded files ------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(BASE_DIR / "media")))
MEDIA_URL = "media/"  # never routed: export files are served only through the owner-checked view
# STORAGE_URL (s3://...): the tasks' result files in an S3 bucket (project/storage_url.py says the
# format; docs/deploy.md). Unset: on the local disk, in MEDIA_ROOT.
_storage_url = env.str("STORAGE_URL", default="")
STORAGES = {
    "default": object_storage_from_url(_storage_url)
    if _storage_url
    else {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "project.storage.StaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Serve from the app folders too, so that static files work before `collectstatic` has run;
# collected files in STATIC_ROOT (hashed, compressed, cached for a year) are preferred.
WHITENOISE_USE_FINDERS = True

# --- Email ----------------------------------------------------------------------------------
# EMAIL_URL picks the backend: smtp://user:pass@host:587 in production; consolemail:// or
# filemail:////absolute/path (four slashes) in development so that nothing leaves the machine by accident.
_email = env.email_url("EMAIL_URL", default="consolemail://")
_email["EMAIL_TIMEOUT"] = env.int("EMAIL_TIMEOUT", default=30)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="exports@localhost")
if django.VERSION >= (6, 1):
    # Django 6.1 configures email as MAILERS; its EMAIL_* settings are deprecated. The same URL
    # becomes the default mailer, with the options its backend takes.
    _backend = _email["EMAIL_BACKEND"]
    _options: dict[str, object] = {}
    if _backend.endswith("smtp.EmailBackend"):
        _options = {
            "host": _email["EMAIL_HOST"],
            "port": _email["EMAIL_PORT"],
            "username": _email["EMAIL_HOST_USER"] or "",
            "password": _email["EMAIL_HOST_PASSWORD"] or "",
            "use_tls": _email.get("EMAIL_USE_TLS", False),
            "use_ssl": _email.get("EMAIL_USE_SSL", False),
            "timeout": _email["EMAIL_TIMEOUT"],
        }
    elif _backend.endswith("filebased.EmailBackend"):
        _options = {"file_path": _email["EMAIL_FILE_PATH"]}
    MAILERS = {"default": {"BACKEND": _backend, "OPTIONS": _options}}
else:
    vars().update(_email)

# --- Redis, RQ and Channels -----------------------------------------------------------------
# One Redis serves the job queue and the channel layer unless CHANNEL_LAYER_REDIS_URL splits them.
# Passwords and TLS go in the URL: rediss://:password@host:6380/0 (see docs/deploy.md).
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
CHANNEL_LAYER_REDIS_URL = env.str("CHANNEL_LAYER_REDIS_URL", default=REDIS_URL)
# Redis Sentinel instead of a fixed address: "host1:26379,host2:26379" plus the master's name.
REDIS_SENTINELS = [
    (host, int(port)) for host, port in (entry.rsplit(":", 1) for entry in env.list("REDIS_SENTINELS", default=[]))
]
REDIS_SENTINEL_MASTER = env.str("REDIS_SENTINEL_MASTER", default="mymaster")
REDIS_PASSWORD = env.str("REDIS_PASSWORD", default=None)

if REDIS_SENTINELS:
    _rq_connection = {
        "SENTINELS": REDIS_SENTINELS,
        "MASTER_NAME": REDIS_SENTINEL_MASTER,
        "DB": env.int("REDIS_DB", default=0),
        "PASSWORD": REDIS_PASSWORD,
    }
    _layer_host = {
        "sentinels": REDIS_SENTINELS,
        "master_name": REDIS_SENTINEL_MASTER,
        "password": REDIS_PASSWORD,
        "db": env.int("CHANNEL_LAYER_REDIS_DB", default=env.int("REDIS_DB", default=0)),
    }
else:
    _rq_connection = {"URL": REDIS_URL, "SSL_CERT_REQS": env.str("REDIS_SSL_CERT_REQS", default="required")}
    _layer_host = {"address": CHANNEL_LAYER_REDIS_URL}
    if CHANNEL_LAYER_REDIS_URL.startswith("rediss://"):
        _layer_host["ssl_cert_reqs"] = env.str("REDIS_SSL_CERT_REQS", default="required")

RQ_QUEUES = {
    "default": {
        **_rq_connection,
        # An export of a million posts takes seconds; anything near this bound is stuck.
        "DEFAULT_TIMEOUT": env.int("RQ_DEFAULT_TIMEOUT", default=15 * 60),
        # Keep finished job records one day so the dashboard can show them, not forever.
        "DEFAULT_RESULT_TTL": 24 * 3600,
    },
    # Account emails (welcome, password reset) on a queue and worker of their own, so a flood of
    # them never delays a task: the default queue's worker never takes them (accounts/services.py).
    # Plain RQ jobs, with no task row: the task worker class and the safety net are not for them.
    "email": {
        **_rq_connection,
        # An email that takes longer than this hangs on its mail server (EMAIL_TIMEOUT per attempt).
        "DEFAULT_TIMEOUT": 5 * 60,
        "DEFAULT_RESULT_TTL": 24 * 3600,
    },
}
RQ = {
    # The services enqueue inside transaction.on_commit themselves (accounts/services.py), so the
    # deferral is visible in the code; django-rq must not defer a second time. (The tasks' queue
    # enqueues at once whatever this says: live_tasks/queue.py.)
    "COMMIT_MODE": "auto",
    # Heartbeats running jobs every few seconds and ends a task whose work horse dies (live_tasks/worker.py).
    "WORKER_CLASS": "live_tasks.worker.TaskWorker",
}
RQ_SHOW_ADMIN_LINK = True
# django.tasks' `@task` functions (recount/tasks.py) run as the library's tasks, on the default
# queue: live progress, cancel, the safety net, the admin. Django 6 ships django.tasks; on 5.2 it is
# the django-tasks backport (requirements.txt), an app of its own.
TASKS = {"default": {"BACKEND": "live_tasks.backends.LiveTasksBackend", "QUEUES": ["default"]}}
if django.VERSION < (6, 0):
    INSTALLED_APPS.append("django_tasks")

CHANNEL_LAYERS: dict[str, dict[str, Any]] = {
    "default": {
        # Pub/sub layer, not the default list-based RedisChannelLayer: the latter shares a capacity
        # of 100 messages per process and silently drops past it; pub/sub has no such cap and no
        # group expiry (membership lives as long as the subscribing socket). Delivery is
        # at-most-once either way; the snapshot on connect and each task's `seq` make a lost
        # message harmless (docs/protocol.md). It holds one Redis connection per process and
        # event loop for all its sockets, so there is no per-socket connection pool to size.
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        # The list-based layer's tuning knobs do not exist here, on purpose: no `capacity` (nothing
        # is queued in Redis to overflow), no `expiry`/`group_expiry` (a group lives exactly as long
        # as its subscribers), and no per-socket connection pool to exhaust when a thousand pages
        # reconnect at once. Measured in BENCHMARKS.md (live latency and loss, socket capacity).
        "CONFIG": {
            "hosts": [_layer_host],
            # Pub/sub channels are global to a Redis server (not per database number), so a
            # prefix keeps two projects, or the test suite, apart on one server.
            "prefix": env.str("CHANNEL_LAYER_PREFIX", default="exports-live"),
            # msgpack (the default, stated): compact, and the same on every process of a deployment.
            "serializer_format": "msgpack",
        },
    },
}

# --- Live tasks: the library (live_tasks/conf.py has every key's default; docs/settings.md) ------
# This site reads each from the environment under its own name (.env.example).
_work_dir = env.str("TASK_WORK_DIR", default=str(MEDIA_ROOT / "tasks-in-progress"))
LIVE_TASKS: dict[str, Any] = {
    # What runs the tasks' jobs: "rq" (django-rq, the RQ_QUEUES above) or "celery" (the site's Celery
    # app, project/celery.py, on CELERY_BROKER_URL below). Every process of the site must agree.
    "QUEUE_BACKEND": env.str("QUEUE_BACKEND", default="rq"),
    "QUEUE": "default",
    # This site's pages and clients have always used this path (the library's default: /ws/tasks/).
    "WEBSOCKET_PATH": "/ws/notifications/",
    "BASE_TEMPLATE": "base.html",
    "PROGRESS_INTERVAL": env.float("TASK_PROGRESS_INTERVAL", default=0.25),
    "RETRY_ATTEMPTS": env.int("TASK_RETRY_ATTEMPTS", default=4),
    "RETRY_BACKOFF": env.float("TASK_RETRY_BACKOFF", default=2.0),
    "RESULT_RETENTION_DAYS": env.int("TASK_RESULT_RETENTION_DAYS", default=7),
    # Keep it above RESULT_RETENTION_DAYS: the row is what says a file expired.
    "ROW_RETENTION_DAYS": env.int("TASK_ROW_RETENTION_DAYS", default=30),
    # Inside MEDIA_ROOT so that whichever process cleans up after a killed job can reach it.
    "WORK_DIR": _work_dir,
    "FAILED_JOB_TTL_SECONDS": env.int("TASK_FAILED_JOB_TTL_SECONDS", default=7 * 24 * 3600),
    "LAUNCH_LIMIT": env.int("TASK_LAUNCH_LIMIT", default=20),
    "LAUNCH_WINDOW_SECONDS": env.int("TASK_LAUNCH_WINDOW_SECONDS", default=60),
    "RESULT_QUOTA_BYTES": env.int("TASK_RESULT_QUOTA_BYTES", default=512 * 1024 * 1024),
    "SOCKETS_PER_USER": env.int("LIVE_SOCKETS_PER_USER", default=20),
    "SESSION_RECHECK_SECONDS": env.float("LIVE_SESSION_RECHECK_SECONDS", default=30.0),
    "JOB_HEARTBEAT_SECONDS": env.int("WORKER_JOB_HEARTBEAT_SECONDS", default=5),
    "LOST_AFTER_SECONDS": env.int("TASK_LOST_AFTER_SECONDS", default=20),
    "QUEUED_GRACE_SECONDS": env.int("TASK_QUEUED_GRACE_SECONDS", default=15),
    "WORKER_NICENESS": env.int("WORKER_NICENESS", default=10),
    "RECONCILE_INTERVAL_SECONDS": env.int("TASK_RECONCILE_INTERVAL_SECONDS", default=10),
    "SAFETY_NET_MAX_AGE_SECONDS": env.int("TASK_SAFETY_NET_MAX_AGE_SECONDS", default=60),
    # Result files in a bucket (STORAGE_URL): downloads redirect to a presigned URL; 0 streams them.
    "DOWNLOAD_REDIRECT": env.bool("STORAGE_DOWNLOAD_REDIRECT", default=True),
    # The bearer token Prometheus sends to /tasks/metrics/ (docs/metrics.md); unset: that URL is a 404.
    "METRICS_TOKEN": env.str("METRICS_TOKEN", default=None),
}
# The same for a failed account email (welcome, password reset) on the "email" queue.
EMAIL_FAILED_JOB_TTL_SECONDS = env.int("EMAIL_FAILED_JOB_TTL_SECONDS", default=7 * 24 * 3600)

# --- Celery (QUEUE_BACKEND=celery only) -----------------------------------------------------
# The site's Celery app (project/celery.py) reads these CELERY_* names. Its broker holds the tasks'
# queue ("default") and the account emails' ("email"), both served by one `celery -A project worker
# -Q default,email` (Procfile.celery); Redis still serves the library's rate limits, socket counts
# and job heartbeats, and the channel layer. No result backend: the task row is the result.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="amqp://guest:guest@127.0.0.1:5672//")
# One message reserved per pool process at a time: a long export never holds a second one back
# from an idle worker (live_tasks.W002 otherwise). Acks: each task sets its own (the library's job
# is acknowledged late, live_tasks/queue/celery.py; an email as it starts, accounts/celery_tasks.py).
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True

# --- Abuse limits (docs/operations.md, "Limits") ---------------------------------------------
# Largest request body, except POST /imports/ (IMPORT_MAX_BYTES). daphne refuses a larger one with
# 413 as it arrives, before storing any of it (project/bodylimit.py); the largest form (a post of
# 20,000 characters, percent-encoded) is under 250 kB.
REQUEST_BODY_MAX_BYTES = env.int("REQUEST_BODY_MAX_BYTES", default=1024 * 1024)
# A form's files up to that size are parsed in memory: Django would otherwise write them to named
# temporary files, which a killed process leaves behind.
FILE_UPLOAD_MAX_MEMORY_SIZE = max(2_621_440, REQUEST_BODY_MAX_BYTES)  # Django's default, or more
# Task launches, stored results and live sockets per user: LIVE_TASKS above.
# Posts written on the posts page per user in each window (imports are not counted).
POST_CREATE_LIMIT = env.int("POST_CREATE_LIMIT", default=120)
POST_CREATE_WINDOW_SECONDS = env.int("POST_CREATE_WINDOW_SECONDS", default=60)
# Password reset requests per email address (whether or not an account has it) and per client
# address, and sign-ups per client address, in each window; past it: the form again, HTTP 429 with
# Retry-After, nothing emailed. The client address is django-axes' (AXES_* below), IPv6 per /64.
PASSWORD_RESET_EMAIL_LIMIT = env.int("PASSWORD_RESET_EMAIL_LIMIT", default=5)
PASSWORD_RESET_EMAIL_WINDOW_SECONDS = env.int("PASSWORD_RESET_EMAIL_WINDOW_SECONDS", default=3600)
PASSWORD_RESET_CLIENT_LIMIT = env.int("PASSWORD_RESET_CLIENT_LIMIT", default=20)
PASSWORD_RESET_CLIENT_WINDOW_SECONDS = env.int("PASSWORD_RESET_CLIENT_WINDOW_SECONDS", default=3600)
SIGNUP_CLIENT_LIMIT = env.int("SIGNUP_CLIENT_LIMIT", default=10)
SIGNUP_CLIENT_WINDOW_SECONDS = env.int("SIGNUP_CLIENT_WINDOW_SECONDS", default=3600)
# Failed logins (django-axes): this many in a row for one username from one IP address lock that
# pair out for LOGIN_LOCKOUT_MINUTES; a successful login resets the count.
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# The client's address, for the lockout, is REMOTE_ADDR and nothing a client can send: behind the
# proxy, daphne --proxy-headers sets it from X-Forwarded-For, which the documented nginx replaces with
# the address it sees (docs/deploy.md, section 3). axes reads REMOTE_ADDR itself while django-ipware
# is not installed; this keeps ipware, should it come in, off the forwarding headers.
AXES_IPWARE_META_PRECEDENCE_ORDER = ("REMOTE_ADDR",)

# --- Exports (exports/) ---------------------------------------------------------------------
# The largest export email, as sent (the gzip-compressed file base64-encoded, plus the text): many
# mail servers refuse more than 10 MiB. An export that does not fit is emailed as a download link.
EXPORT_EMAIL_MAX_BYTES = env.int("EXPORT_EMAIL_MAX_BYTES", default=10 * 1024 * 1024)
# Rows fetched from the database per round trip while streaming an export.
EXPORT_CHUNK_SIZE = env.int("EXPORT_CHUNK_SIZE", default=2000)
# Hard limit for one export job; past it the task ends "failed" with "The posts export timed out."
EXPORT_JOB_TIMEOUT = env.int("EXPORT_JOB_TIMEOUT", default=15 * 60)

# --- Imports (imports/) ---------------------------------------------------------------------
# Largest request body for POST /imports/ (the file plus a few hundred bytes of form); daphne refuses
# a larger one with 413 as it arrives (project/bodylimit.py). A reverse proxy in front needs at
# least this (nginx: client_max_body_size).
IMPORT_MAX_BYTES = env.int("IMPORT_MAX_BYTES", default=200 * 1024 * 1024)
# Largest file once gzip-decompressed: a "gzip bomb" is stopped at this point, never inflated whole.
IMPORT_MAX_DECOMPRESSED_BYTES = env.int("IMPORT_MAX_DECOMPRESSED_BYTES", default=1024 * 1024 * 1024)
# Posts added per transaction: each is short, so other writers (SQLite's one lock) keep moving.
IMPORT_BATCH_SIZE = env.int("IMPORT_BATCH_SIZE", default=2000)
# Hard limit for one import job; past it the task fails "timed out" and nothing is added.
IMPORT_JOB_TIMEOUT = env.int("IMPORT_JOB_TIMEOUT", default=30 * 60)

# --- Security -------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # read by no script: forms carry the token in a hidden field
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("BEHIND_TLS_PROXY", default=False) else None
X_FRAME_OPTIONS = "DENY"
# A refused form (most often a tab left open across a sign-out and sign-in) gets the site's page
# with a way back, not Django's bare 403.
CSRF_FAILURE_VIEW = "project.views.csrf_failure"

# One strict policy for every page and the admin: scripts, styles and images from this site only,
# no inline script or style, no plugins, no framing, forms post only here, and WebSockets (the
# live feed) to this site ('self' covers ws:// and wss:// of the same host in current browsers).
# Loosened only for django-rq's dashboard, whose templates carry inline scripts (project/urls.py).
CSP_DIRECTIVES = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "frame-ancestors": ["'none'"],
    "form-action": ["'self'"],
}
if DJANGO_HAS_CSP:
    SECURE_CSP = CSP_DIRECTIVES
else:
    CONTENT_SECURITY_POLICY = {"DIRECTIVES": CSP_DIRECTIVES}
# No page of this site uses any of these browser features; deny them to it and to any frame.
PERMISSIONS_POLICY: dict[str, list[str]] = {
    feature: []
    for feature in (
        "accelerometer",
        "camera",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "payment",
        "usb",
    )
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # django-axes logs every login at INFO; its lockouts are WARNINGs.
    "loggers": {"django.request": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}
