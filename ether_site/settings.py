"""Ether settings, read from the environment through the typed helpers of
``ether_site/env.py`` (the database: ``ether_site/databases.py``).

The defaults run with nothing installed (SQLite in WAL mode, the in-memory channel
layer). ``DATABASE_URL`` switches to Postgres and ``REDIS_URL`` to channels-redis.
"""

from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from ether_site.databases import default_database
from ether_site.env import (
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_origin,
    env_rate,
    env_seconds_list,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent


DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off "
            "(for local development, set DJANGO_DEBUG=1; `make run` does)."
        )
    SECRET_KEY = "insecure-development-key-only-used-with-DJANGO_DEBUG-on"

ALLOWED_HOSTS = [h for h in env_str("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h]
if DEBUG:
    ALLOWED_HOSTS += ["testserver"]
CSRF_TRUSTED_ORIGINS = [o for o in env_str("DJANGO_CSRF_TRUSTED_ORIGINS").split(",") if o]
# A refused CSRF check on an API path is a problem document; on a page, Django's page.
CSRF_FAILURE_VIEW = "api.problems.csrf_failure"

# --- Transport security (production: DEBUG off) -------------------------------------
# Behind a reverse proxy that terminates TLS, ETHER_BEHIND_TLS_PROXY=1 trusts its
# X-Forwarded-Proto, so request.is_secure() and absolute URLs (callbacks) say https.
# Only set it when the proxy overwrites that header: a client could send it otherwise.
ETHER_BEHIND_TLS_PROXY = env_bool("ETHER_BEHIND_TLS_PROXY", False)
if ETHER_BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
if not DEBUG:
    # Plain http is redirected to https; turn off only if the proxy already does it.
    SECURE_SSL_REDIRECT = env_bool("ETHER_SSL_REDIRECT", True)
    # Probes and Prometheus talk to each daphne process over plain http on loopback.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("ETHER_HSTS_SECONDS", 365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("ETHER_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("ETHER_HSTS_PRELOAD", False)
    if not SECURE_HSTS_PRELOAD:
        # Joining browsers' preload list is the domain owner's decision, not a default.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Content-Security-Policy of every HTML page (api.middleware.ContentSecurityPolicy).
# Scripts only from our own static files; styles may be inline because Django's admin
# and Swagger UI set style attributes.
ETHER_CSP = env_str(
    "ETHER_CSP",
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
)

INSTALLED_APPS = [
    "daphne",
    # The admin's theme (ether_site/admin_theme.py); it must come before the admin.
    "unfold",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    # Our apps, each above the ones it imports (a contract in pyproject.toml enforces it).
    "api",
    "accounts",
    "corpus",
    "tasks",
    "delivery",
    "web",
]

MIDDLEWARE = [
    # Outermost of all: the request id, one log line and the metrics of every request.
    "ether_site.observability.RequestObservabilityMiddleware",
    # Outermost: an error answer on an API path that is not a problem document becomes one.
    "api.middleware.ApiProblemMiddleware",
    "api.middleware.BodyLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "api.middleware.ContentSecurityPolicyMiddleware",
    "api.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "ether_site.urls"
ASGI_APPLICATION = "ether_site.asgi.application"
WSGI_APPLICATION = None

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
            ]
        },
    }
]

# --- Database -------------------------------------------------------------------------
# How long a statement may wait for a lock before the request answers 503.
DB_LOCK_TIMEOUT_SECONDS = env_float("ETHER_DB_LOCK_TIMEOUT", 5.0, minimum=0.01)
DATA_DIR = Path(env_str("ETHER_DATA_DIR", str(BASE_DIR / "var")))
DATABASE_URL = env_str("DATABASE_URL")
DATABASES = {
    "default": default_database(
        database_url=DATABASE_URL, data_dir=DATA_DIR, lock_timeout=DB_LOCK_TIMEOUT_SECONDS
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channels -------------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # The core layer (docs/realtime.md says why), minus a leak per closed socket.
            "BACKEND": "ether_site.channel_layer.EtherRedisChannelLayer",
            "CONFIG": {
                # A blocking pool (EtherRedisChannelLayer.create_pool): past its size a
                # command waits up to the timeout for a free connection instead of failing
                # at once with "Too many connections" (redis-py's default pool).
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "max_connections": env_int("ETHER_REDIS_POOL_SIZE", 100, minimum=2),
                        "timeout": env_float("ETHER_REDIS_POOL_TIMEOUT", 10.0, minimum=0.1),
                    }
                ],
                # Group names are the same in every deployment (ev.activity.<org>): two
                # deployments, or two test runs (ETHER_TEST_DB_SUFFIX), on one Redis would
                # hear each other's events and break each other's seq order. Keys are
                # prefixed apart.
                "prefix": env_str("ETHER_CHANNEL_PREFIX", "ether")
                + env_str("ETHER_TEST_DB_SUFFIX"),
                # Events are persisted first; the layer only carries live copies, so a
                # short expiry and a bounded capacity keep Redis small under slow readers.
                "capacity": env_int("ETHER_CHANNEL_CAPACITY", 1000, minimum=10),
                "expiry": env_int("ETHER_CHANNEL_EXPIRY", 30, minimum=1),
                "group_expiry": env_int("ETHER_GROUP_EXPIRY", 86400, minimum=60),
            },
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            "CONFIG": {"capacity": env_int("ETHER_CHANNEL_CAPACITY", 1000, minimum=10)},
        }
    }

# --- Auth, i18n, static ---------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
# Served straight from the finders: no collectstatic step for a new user.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

LOGIN_URL = "/admin/login/"

from ether_site.admin_theme import UNFOLD  # noqa: E402, F401 (the admin's theme settings)

# --- Ether ----------------------------------------------------------------------------
# The origin every absolute URL the server hands out is built from (api/public_url.py):
# set it in production so a forged Host header cannot redirect a harness's callbacks.
# Empty: the request's own origin (the local default).
ETHER_PUBLIC_URL = env_origin("ETHER_PUBLIC_URL")
ETHER_LEASE_SECONDS = env_int("ETHER_LEASE_SECONDS", 300, minimum=1)
ETHER_MAX_BODY_BYTES = env_int("ETHER_MAX_BODY_BYTES", 1024 * 1024, minimum=1024)
# Markdown longer than this is refused (413 markdown_too_large) rather than rendered.
# cmark-gfm and nh3 are linear, but dense markup costs them ~1 µs a byte: at 32 KiB the
# worst case of bench/bench_markdown.py is ~35-55 ms, at 1 MiB seconds (docs/performance.md).
ETHER_MAX_RENDER_BYTES = env_int("ETHER_MAX_RENDER_BYTES", 32 * 1024, minimum=1024)
ETHER_IDEMPOTENCY_TTL_SECONDS = env_int("ETHER_IDEMPOTENCY_TTL_SECONDS", 24 * 3600, minimum=60)
# A key whose first request never finished (a crashed process) may be retried after this:
# its write rolled back with it, because the stored answer commits with the write.
ETHER_IDEMPOTENCY_LOCK_SECONDS = env_int("ETHER_IDEMPOTENCY_LOCK_SECONDS", 60, minimum=1)
ETHER_SWEEP_INTERVAL_SECONDS = env_float("ETHER_SWEEP_INTERVAL", 5.0, minimum=0.1)
ETHER_WORKING_BUDGET_BYTES = env_int("ETHER_WORKING_BUDGET_BYTES", 24 * 1024, minimum=1024)
# A long poll (POST /api/harness/claim-next) is woken by a channel-layer ping when a task
# becomes ready, and looks again at least this often anyway (api/longpoll.py).
ETHER_LONGPOLL_RECHECK_SECONDS = env_float("ETHER_LONGPOLL_RECHECK_SECONDS", 1.0, minimum=0.05)
# Who writes the compacted memory (CONTRACT.md §7): "outline" (deterministic) or "openai"
# (any OpenAI-compatible chat-completions endpoint; a failure falls back to outline).
ETHER_SUMMARISER = env_str("ETHER_SUMMARISER", "outline").strip() or "outline"
if ETHER_SUMMARISER not in {"outline", "openai"}:
    raise ImproperlyConfigured(f"ETHER_SUMMARISER={ETHER_SUMMARISER!r}: use outline or openai")
ETHER_SUMMARISER_URL = env_str("ETHER_SUMMARISER_URL", "https://api.openai.com/v1")
ETHER_SUMMARISER_MODEL = env_str("ETHER_SUMMARISER_MODEL", "gpt-4o-mini")
ETHER_SUMMARISER_API_KEY = env_str("ETHER_SUMMARISER_API_KEY")
ETHER_SUMMARISER_TIMEOUT_SECONDS = env_float("ETHER_SUMMARISER_TIMEOUT", 30.0, minimum=0.1)
# With a token, a submitted PR is verified on GitHub after the result commits
# (delivery/verification); without one the delivery says it was not verified.
ETHER_GITHUB_TOKEN = env_str("ETHER_GITHUB_TOKEN")
ETHER_GITHUB_API_URL = env_str("ETHER_GITHUB_API_URL", "https://api.github.com")
# A verification GitHub could not answer (rate limit, outage) or that a crash left
# running is retried by `manage.py sweep_verifications` after this, at most this often.
ETHER_VERIFY_RETRY_SECONDS = env_int("ETHER_VERIFY_RETRY_SECONDS", 60, minimum=1)
ETHER_VERIFY_MAX_ATTEMPTS = env_int("ETHER_VERIFY_MAX_ATTEMPTS", 5, minimum=1)
ETHER_SSE_POLL_SECONDS = env_float("ETHER_SSE_POLL_SECONDS", 0.5, minimum=0.05)
# Whether clients (the pages, and `/api/config` for others) open the WebSocket first; off,
# they go straight to SSE (a proxy that cannot pass WebSockets). docs/realtime.md.
ETHER_REALTIME_PREFER_WEBSOCKET = env_bool("ETHER_REALTIME_PREFER_WEBSOCKET", True)
ETHER_REPLAY_MAX = env_int("ETHER_REPLAY_MAX", 1000, minimum=1)
# A WebSocket client whose unsent frames pass this many bytes is closed with 4008; it
# resumes with `since`. Bounds the memory one stalled reader can cost a server process.
ETHER_WS_MAX_BACKLOG_BYTES = env_int("ETHER_WS_MAX_BACKLOG_BYTES", 1024 * 1024, minimum=1024)
# A client frame larger than this is answered bad_request unparsed (client frames are tiny).
ETHER_WS_MAX_FRAME_BYTES = env_int("ETHER_WS_MAX_FRAME_BYTES", 64 * 1024, minimum=1024)
# Open WebSockets plus SSE streams one credential may hold in one server process.
ETHER_STREAMS_PER_CREDENTIAL = env_int("ETHER_STREAMS_PER_CREDENTIAL", 20, minimum=1)
# How often an open stream re-reads its credential: the safety net behind the revocation
# broadcast, and SSE's only way to notice a revoke.
ETHER_CREDENTIAL_RECHECK_SECONDS = env_float("ETHER_CREDENTIAL_RECHECK_SECONDS", 5.0, minimum=0.1)
DATA_UPLOAD_MAX_MEMORY_SIZE = ETHER_MAX_BODY_BYTES

# Webhooks (docs/webhooks.md). Loopback and private targets are refused unless this is
# set (`make run` sets it, for a receiver on this machine).
ETHER_WEBHOOK_ALLOW_PRIVATE = env_bool("ETHER_WEBHOOK_ALLOW_PRIVATE", False)
# Waits between attempts: a delivery is tried once, then once after each of these, then
# given up (shown in the admin, where it can be resent).
ETHER_WEBHOOK_RETRY_SECONDS = env_seconds_list("ETHER_WEBHOOK_RETRY_SECONDS", "10,60,300,1800,7200")
ETHER_WEBHOOK_TIMEOUT_SECONDS = env_float("ETHER_WEBHOOK_TIMEOUT_SECONDS", 10.0, minimum=0.1)
# How long a sender holds a delivery it claimed; past it (a killed sender) another sender
# takes it over. Longer than a whole attempt (connect + send + read), so a live sender
# keeps its claim.
ETHER_WEBHOOK_CLAIM_SECONDS = env_float("ETHER_WEBHOOK_CLAIM_SECONDS", 60.0, minimum=0.5)
if ETHER_WEBHOOK_CLAIM_SECONDS <= ETHER_WEBHOOK_TIMEOUT_SECONDS * 2:
    raise ImproperlyConfigured(
        "ETHER_WEBHOOK_CLAIM_SECONDS must be more than twice ETHER_WEBHOOK_TIMEOUT_SECONDS"
    )
ETHER_WEBHOOK_POLL_SECONDS = env_float("ETHER_WEBHOOK_POLL_SECONDS", 1.0, minimum=0.05)
# After a secret rotation the old secret still signs (a second signature) this long.
ETHER_WEBHOOK_SECRET_OVERLAP_SECONDS = env_int(
    "ETHER_WEBHOOK_SECRET_OVERLAP_SECONDS", 24 * 3600, minimum=0
)

# Rate limits (api/ratelimit.py): "<count>/<second|minute|hour>", or "off".
# Generous by default: they stop a runaway harness loop, not a busy one.
ETHER_RATE_LIMITS = {
    "harness": env_rate("ETHER_RATE_HARNESS", "6000/minute"),  # any /api/harness/ call, per key
    "claim": env_rate("ETHER_RATE_CLAIM", "600/minute"),  # claims, per app key
    "ticket": env_rate("ETHER_RATE_TICKET", "120/minute"),  # realtime tickets, per user
    # Failed sign-ins on /login/, per client address and per username: password guessing.
    "login": env_rate("ETHER_RATE_LOGIN", "10/minute"),
}
# The limiter's counters: in Redis when there is one, so every process shares them.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "ratelimit": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "ether",
            # A Redis that is down or stuck must cost a request milliseconds, not minutes.
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "rate"}
    ),
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_PARSER_CLASSES": ["api.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "api.problems.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "api.schema.EtherAutoSchema",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_CLASSES": ["api.ratelimit.RateThrottle"],
    "DATETIME_FORMAT": "iso-8601",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Ether API",
    "DESCRIPTION": (
        "Coordinates external AI coding-agent harnesses: tasks, leases, steps, "
        "interrupts, results, context and delivery. Errors are RFC 9457 problem documents."
    ),
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # One name for the harness lifecycle (the definitions' inputs and outputs all use it).
    "ENUM_NAME_OVERRIDES": {"HarnessStatusEnum": ["active", "archived", "deleted"]},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.schema.problems_as_problem_json",
    ],
}

# --- Operating (docs/deploy.md) ---------------------------------------------------------
# /metrics: when set, a scrape must send ``Authorization: Bearer <token>``.
ETHER_METRICS_TOKEN = env_str("ETHER_METRICS_TOKEN")
# prometheus-client's own variable (read by it when api.metrics is imported): one
# directory shared by every process of a deployment, so their counters add up.
PROMETHEUS_MULTIPROC_DIR = env_str("PROMETHEUS_MULTIPROC_DIR")
if PROMETHEUS_MULTIPROC_DIR:
    Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)
# /readyz: the workers that must have beaten within ETHER_WORKER_STALE_SECONDS (every
# worker that has ever beaten is checked too; api/heartbeat.py).
ETHER_READY_WORKERS = env_list("ETHER_READY_WORKERS", "sweep_leases")
ETHER_WORKER_STALE_SECONDS = env_float("ETHER_WORKER_STALE_SECONDS", 60.0, minimum=1.0)
# Retention (the sweeper, api/retention.py): rows past their use are deleted in batches
# of ETHER_RETENTION_BATCH, each its own short transaction, every ETHER_RETENTION_INTERVAL.
ETHER_RETENTION_DAYS = env_int("ETHER_RETENTION_DAYS", 30, minimum=1)
ETHER_RETENTION_BATCH = env_int("ETHER_RETENTION_BATCH", 500, minimum=1)
ETHER_RETENTION_INTERVAL_SECONDS = env_float("ETHER_RETENTION_INTERVAL", 60.0, minimum=0.1)
ETHER_LOG_FORMAT = env_choice("ETHER_LOG_FORMAT", "plain", ("plain", "json"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "ether_site.logformat.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "ether_site.logformat.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": ETHER_LOG_FORMAT,
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("ETHER_LOG_LEVEL", "INFO")},
    "loggers": {
        # Django logs every 4xx with the full path; our API answers are problem documents.
        "django.request": {"level": "ERROR"},
    },
}

# --- Capacity (issue 18, docs/performance.md "Harness writes and overload") ------------
# How long a process trusts a harness key it has looked up (tasks/harnesses/auth.py):
# writes re-read the app under the task lock anyway; 0 turns the cache off.
ETHER_AUTH_CACHE_SECONDS = env_float("ETHER_AUTH_CACHE_SECONDS", 5.0)
# Plain steps skip Django's request machinery (ether_site/fastlane.py); 0: every step
# goes through the DRF view.
ETHER_STEP_FAST_LANE = env_bool("ETHER_STEP_FAST_LANE", True)
# A served process reads a plain step straight from its connection's bytes, without
# Twisted's or daphne's request objects (ether_site/direct.py); 0: through them.
ETHER_DIRECT_STEPS = env_bool("ETHER_DIRECT_STEPS", True)
# Admission (api/admission.py): at most this many API writes and API requests run in
# Django at once per process; another waits in the event loop (no thread, connection or
# lock held) at most ETHER_ADMISSION_WAIT_MS, then is refused 503 `overloaded` with
# Retry-After. SQLite has one write lock, so a few writers keep it busy; Postgres writes
# stay under the pool size so reads still find a connection. ETHER_MAX_INFLIGHT_REQUESTS=0
# turns admission off.
_on_sqlite = DATABASES["default"]["ENGINE"] == "ether_site.sqlite"
ETHER_MAX_INFLIGHT_WRITES = env_int(
    "ETHER_MAX_INFLIGHT_WRITES",
    4 if _on_sqlite else max(1, env_int("ETHER_DB_POOL_SIZE", 10, minimum=1) - 2),
)
ETHER_MAX_INFLIGHT_REQUESTS = env_int(
    "ETHER_MAX_INFLIGHT_REQUESTS",
    16 if _on_sqlite else env_int("ETHER_DB_POOL_SIZE", 10, minimum=1),
)
ETHER_ADMISSION_WAIT_MS = env_int("ETHER_ADMISSION_WAIT_MS", 250)
# ...and at most this long in a queue that has not been empty for 100 ms (api/admission.py):
# past capacity, the requests taken keep their latency.
ETHER_ADMISSION_STANDING_WAIT_MS = env_int("ETHER_ADMISSION_STANDING_WAIT_MS", 25, minimum=0)
ETHER_MAX_QUEUED = env_int("ETHER_MAX_QUEUED", 64)
# Past what the event loop can even read (ether_site/loadshed.py): while it runs this many
# ms behind, twice in a row, API requests other than streams are refused 503 as they are
# read, before the application sees them. 0 turns it off.
ETHER_SHED_LAG_MS = env_int("ETHER_SHED_LAG_MS", 50, minimum=0)
# ...and only while at least this many API requests (not streams) are in flight in the
# process: a loop behind on sending frames to watchers, with few requests, refuses none.
ETHER_SHED_MIN_INFLIGHT = env_int("ETHER_SHED_MIN_INFLIGHT", 16, minimum=0)
# ...and, the loop behind or not, while this many are in flight and none of them has been
# answered within ETHER_ADMISSION_STANDING_WAIT_MS for 100 ms (a standing queue). 0: never.
ETHER_SHED_MAX_INFLIGHT = env_int("ETHER_SHED_MAX_INFLIGHT", 128, minimum=0)
# A served SQLite database is checkpointed this often by a thread of its own, not in the
# commit that fills the log (ether_site/walcheckpoint.py). 0: only by the commits.
ETHER_SQLITE_CHECKPOINT_MS = env_int("ETHER_SQLITE_CHECKPOINT_MS", 500, minimum=0)
