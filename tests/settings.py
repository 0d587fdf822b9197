"""Settings for the test suite: the project's settings with test defaults in the environment.

Worker processes started by tests use this module too, so they see the same
test database, Redis database and test-only task handlers.
"""

import os

os.environ.setdefault("SECRET_KEY", "test-secret-key")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("TASK_HANDLER_MODULES", "tests.handlers")
os.environ.setdefault("API_THROTTLE_RATE", "")
os.environ.setdefault("RECONCILE_PENDING_AFTER", "2")

from kbmanager.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
