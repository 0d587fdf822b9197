from __future__ import annotations

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create an admin user if no superuser exists (password from ADMIN_PASSWORD, else generated and printed)."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--username", default=os.environ.get("ADMIN_USERNAME", "admin"))

    def handle(self, *args, **options) -> str:
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            return "an admin user exists already"
        password = os.environ.get("ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        User.objects.create_superuser(options["username"], email="", password=password)
        shown = "(from ADMIN_PASSWORD)" if os.environ.get("ADMIN_PASSWORD") else password
        self.stdout.write(f"created admin user {options['username']!r} with password {shown}")
        return f"log in at /admin/ as {options['username']}"
