"""Settings for kbmanager, all read from the environment.

Every variable is listed with its default in ``.env.example`` and in
``docs/ASYNC_SYSTEM_GUIDE.md``. Bad values fail at start-up with the variable's
name (see ``kbmanager.env``).
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from kbmanager.env import env_bool, env_float, env_int, env_int_list, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "insecure-development-key-only-used-with-debug-on"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_prometheus",
    "django_rq",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "tasks",
    "ingestion",
    "monitoring",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "kbmanager.urls"
WSGI_APPLICATION = "kbmanager.wsgi.application"
ASGI_APPLICATION = "kbmanager.asgi.application"

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

DATABASE_URL = env_str("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/kbmanager")
try:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
except Exception as exc:  # dj_database_url raises several types for a malformed URL
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Ask for UTC in the startup packet: otherwise Django sends SET TIME ZONE on every
# new connection, and every work-horse opens one.
DATABASES["default"].setdefault("OPTIONS", {}).setdefault("options", "-c TimeZone=UTC")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# WhiteNoise serves the admin's and the home page's static files from the apps
# themselves, so a deployment needs no collectstatic step and no separate server.
# Set STATIC_ROOT only to collect them for a front web server.
STATIC_ROOT = env_str("STATIC_ROOT") or None
WHITENOISE_USE_FINDERS = True
LOGIN_URL = "admin:login"

# Uploads (bookmark exports) may be large; API bodies are capped separately.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 10 * 1024 * 1024, minimum=1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", False)
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

# --- Queues and workers -------------------------------------------------------

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")

# Queue name -> (worker count, job timeout in seconds). The tuple order is also
# the order `start_workers` starts them in.
QUEUE_NAMES = ("parsing", "ai", "notion", "default")
WORKER_COUNTS = {
    "parsing": env_int("WORKER_COUNT_PARSING", 3, minimum=0),
    "ai": env_int("WORKER_COUNT_AI", 2, minimum=0),
    "notion": env_int("WORKER_COUNT_NOTION", 2, minimum=0),
    "default": env_int("WORKER_COUNT_DEFAULT", 1, minimum=0),
}
QUEUE_TIMEOUTS = {
    "parsing": env_int("QUEUE_TIMEOUT_PARSING", 60, minimum=1),
    "ai": env_int("QUEUE_TIMEOUT_AI", 120, minimum=1),
    "notion": env_int("QUEUE_TIMEOUT_NOTION", 60, minimum=1),
    "default": env_int("QUEUE_TIMEOUT_DEFAULT", 180, minimum=1),
}

RQ_QUEUES = {
    name: {
        "URL": REDIS_URL,
        "DEFAULT_TIMEOUT": QUEUE_TIMEOUTS[name],
        "SERIALIZER": "rq.serializers.JSONSerializer",
    }
    for name in QUEUE_NAMES
}
RQ = {"WORKER_CLASS": env_str("TASK_WORKER_CLASS", "tasks.worker.TaskWorker")}
RQ_SHOW_ADMIN_LINK = True
# PostgreSQL keeps results and errors; Redis only needs them briefly.
RQ_RESULT_TTL = env_int("RQ_RESULT_TTL", 300, minimum=0)
RQ_FAILURE_TTL = env_int("RQ_FAILURE_TTL", 7 * 24 * 3600, minimum=1)

MAX_TASK_RETRIES = env_int("MAX_TASK_RETRIES", 3, minimum=0)
TASK_RETRY_DELAYS = env_int_list("TASK_RETRY_DELAYS", [0, 30, 300])
TASK_RETENTION_DAYS = env_int("TASK_RETENTION_DAYS", 7, minimum=1)
FAILED_TASK_RETENTION_DAYS = env_int("FAILED_TASK_RETENTION_DAYS", 30, minimum=1)
# Rows `purge_tasks` deletes per short transaction.
TASK_PURGE_BATCH_SIZE = env_int("TASK_PURGE_BATCH_SIZE", 5000, minimum=1)
# Most tasks one bulk cancel/retry (admin or API) acts on; the rest wait for the next call.
TASK_BULK_ACTION_LIMIT = env_int("TASK_BULK_ACTION_LIMIT", 10000, minimum=1)
# Extra modules whose task handlers workers must know, on top of the apps' own.
TASK_HANDLER_MODULES = env_list("TASK_HANDLER_MODULES", [])
# Seconds `start_workers` waits for running jobs on shutdown before killing them.
WORKER_SHUTDOWN_TIMEOUT = env_int("WORKER_SHUTDOWN_TIMEOUT", 30, minimum=1)
# Seconds between heartbeats of a busy worker; one silent for three intervals is
# considered dead by the reconciler, which then re-runs its task.
WORKER_HEARTBEAT_INTERVAL = env_int("WORKER_HEARTBEAT_INTERVAL", 30, minimum=1)
# Whether a worker waits for the disk when it records a claim or a result (see
# the guide: off costs nothing but a re-run of a few tasks if PostgreSQL crashes).
TASK_WORKER_SYNCHRONOUS_COMMIT = env_bool("TASK_WORKER_SYNCHRONOUS_COMMIT", False)
# Seconds between reconciler passes run by `start_workers` (0 turns it off).
RECONCILE_INTERVAL = env_int("RECONCILE_INTERVAL", 30, minimum=0)
# A pending task older than this never reached Redis (its process died after commit).
RECONCILE_PENDING_AFTER = env_int("RECONCILE_PENDING_AFTER", 10, minimum=1)

# --- API ----------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # DRF's default parsers, with a JSON parser that answers 400 (not 500) to absurdly nested documents.
    "DEFAULT_PARSER_CLASSES": [
        "kbmanager.parsers.SafeJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"user": env_str("API_THROTTLE_RATE", "6000/min") or None},
    "EXCEPTION_HANDLER": "kbmanager.api.exception_handler",
    # An unknown ?format= is a 406 naming the formats on offer (DRF answers 404).
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "kbmanager.api.FormatParameterNegotiation",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "kbmanager API",
    "DESCRIPTION": "Links, the ingestion pipeline, tasks and monitoring.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
}
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "kbmanager",
    }
}
METRICS_TOKEN = env_str("METRICS_TOKEN")
PROMETHEUS_EXPORT_MIGRATIONS = False

# --- Ingestion ----------------------------------------------------------------

LINKS_SUBMIT_MAX = env_int("LINKS_SUBMIT_MAX", 1000, minimum=1)
SYNC_STAGE_MAX_LINKS = env_int("SYNC_STAGE_MAX_LINKS", 10, minimum=1)
FETCH_ALLOWED_HOSTS = env_list("FETCH_ALLOWED_HOSTS", [])
FETCH_MAX_BYTES = env_int("FETCH_MAX_BYTES", 5 * 1024 * 1024, minimum=1024)
FETCH_CONNECT_TIMEOUT = env_float("FETCH_CONNECT_TIMEOUT", 5.0, minimum=0.1)
FETCH_TIMEOUT = env_float("FETCH_TIMEOUT", 30.0, minimum=0.1)
FETCH_MAX_REDIRECTS = env_int("FETCH_MAX_REDIRECTS", 5, minimum=0)
FETCH_USER_AGENT = env_str("FETCH_USER_AGENT", "kbmanager/1.0 (+self-hosted knowledge base)")
CONTENT_EXTRACTOR = env_str("CONTENT_EXTRACTOR", "trafilatura")
if CONTENT_EXTRACTOR not in {"trafilatura", "newspaper"}:
    raise ImproperlyConfigured(f"CONTENT_EXTRACTOR must be 'trafilatura' or 'newspaper', got {CONTENT_EXTRACTOR!r}")

OPENAI_API_KEY = env_str("OPENAI_API_KEY")
OPENAI_BASE_URL = env_str("OPENAI_BASE_URL")
OPENAI_MODEL = env_str("OPENAI_MODEL", "gpt-4o-mini")
# Empty means automatic: the OpenAI backend when a key or base URL is set, else the offline one.
AI_BACKEND = env_str("AI_BACKEND") or ("openai" if (OPENAI_API_KEY or OPENAI_BASE_URL) else "local")
if AI_BACKEND not in {"openai", "local"}:
    raise ImproperlyConfigured(f"AI_BACKEND must be 'openai' or 'local', got {AI_BACKEND!r}")
AI_INPUT_CHAR_BUDGET = env_int("AI_INPUT_CHAR_BUDGET", 12000, minimum=500)
# The client gives up before the queue's job timeout, so a slow model is a clean
# failure with a message rather than a killed work-horse.
AI_REQUEST_TIMEOUT = env_float("AI_REQUEST_TIMEOUT", max(5.0, QUEUE_TIMEOUTS["ai"] - 15), minimum=1)
if AI_REQUEST_TIMEOUT >= QUEUE_TIMEOUTS["ai"]:
    raise ImproperlyConfigured("AI_REQUEST_TIMEOUT must be below QUEUE_TIMEOUT_AI")

NOTION_TOKEN = env_str("NOTION_TOKEN")
NOTION_DATABASE_ID = env_str("NOTION_DATABASE_ID")
NOTION_BASE_URL = env_str("NOTION_BASE_URL", "https://api.notion.com")
NOTION_RATE_LIMIT = env_float("NOTION_RATE_LIMIT", 3.0, minimum=0.1)
NOTION_PROPERTY_TITLE = env_str("NOTION_PROPERTY_TITLE", "Name")
NOTION_PROPERTY_URL = env_str("NOTION_PROPERTY_URL", "URL")
NOTION_PROPERTY_CATEGORY = env_str("NOTION_PROPERTY_CATEGORY", "Category")
NOTION_PROPERTY_TAGS = env_str("NOTION_PROPERTY_TAGS", "Tags")
NOTION_PROPERTY_SUMMARY = env_str("NOTION_PROPERTY_SUMMARY", "Summary")
NOTION_PROPERTY_SAVED = env_str("NOTION_PROPERTY_SAVED", "Saved")
NOTION_PROPERTY_DOMAIN = env_str("NOTION_PROPERTY_DOMAIN", "Domain")
NOTION_ENABLED = bool(NOTION_TOKEN and NOTION_DATABASE_ID)

# --- Monitoring ---------------------------------------------------------------

# A queue whose oldest job waited longer than this is reported as degraded.
HEALTH_QUEUE_AGE_WARN_SECONDS = env_int("HEALTH_QUEUE_AGE_WARN_SECONDS", 300, minimum=1)
# Finished-task counts (a full scan) are cached in Redis and recomputed in the background after this many seconds.
MONITORING_COUNTS_REFRESH_SECONDS = env_int("MONITORING_COUNTS_REFRESH_SECONDS", 30, minimum=1)
# Run and wait time histograms cover the tasks that finished in this window.
MONITORING_DURATION_WINDOW_SECONDS = env_int("MONITORING_DURATION_WINDOW_SECONDS", 600, minimum=10)
