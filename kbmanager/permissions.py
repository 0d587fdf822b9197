"""Permission classes shared by every API: a view names the Django permissions it needs."""

from __future__ import annotations

from rest_framework.permissions import BasePermission


def require_perms(*perms: str) -> type[BasePermission]:
    """A DRF permission class that needs an authenticated user holding all of ``perms``.

    ``permission_classes = [require_perms("tasks.view_task")]``. Anonymous
    callers get 401 (through DRF's authentication), others without the
    permission 403.
    """

    class HasPerms(BasePermission):
        message = f"you need the permission(s) {', '.join(perms)}"

        def has_permission(self, request, view) -> bool:  # noqa: ANN001
            user = request.user
            return bool(user and user.is_authenticated and user.has_perms(perms))

    HasPerms.__name__ = "Has_" + "_".join(p.replace(".", "_") for p in perms)
    return HasPerms
