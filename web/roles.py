"""Roles: Django groups for the office roles, links (Engineer.user, Contact.user) for field
engineers and customers. The scope each role grants is decided in
:mod:`service_crm.selectors.access`; this module assigns roles and guards views by role."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractUser, Group, Permission
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseBase

from service_crm.selectors.access import STAFF_ROLES, Role, scope_for

__all__ = ["STAFF_ROLES", "Role", "assign_role", "role_required"]

# Extra model permissions that come with a group role (the services check these).
_ROLE_PERMISSIONS: dict[Role, tuple[str, ...]] = {
    Role.SERVICE_MANAGER: ("approve_offer",),
}


def assign_role(*, user: AbstractUser, role: Role) -> None:
    """Put the user in the role's group (created on first use, with its permissions)."""
    if role == Role.ADMIN:
        raise ValueError("admin is a superuser flag, not a group: use createsuperuser")
    if role in (Role.FIELD_ENGINEER, Role.CUSTOMER):
        raise ValueError(f"{role} comes from linking the user to an Engineer or a Contact")
    group, _ = Group.objects.get_or_create(name=str(role))
    codenames = _ROLE_PERMISSIONS.get(role, ())
    if codenames:  # idempotent: also repairs a group someone created by hand in the admin
        group.permissions.add(*Permission.objects.filter(codename__in=codenames))
    user.groups.add(group)
    # Drop the per-object caches so the new role takes effect on this instance too.
    for attr in ("_aftercare_scope", "_perm_cache", "_group_perm_cache"):
        user.__dict__.pop(attr, None)


V = TypeVar("V", bound=Callable[..., HttpResponseBase])


def role_required(*roles: Role) -> Callable[[V], V]:
    """Signed in and holding one of ``roles``, or 403."""
    allowed = frozenset(roles)

    def decorator(view: V) -> V:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not scope_for(user=request.user).roles & allowed:
                raise PermissionDenied("Your role does not open this page.")
            return view(request, *args, **kwargs)

        return cast(V, login_required(wrapped))

    return decorator


def home_url_name(user: Any) -> str:
    """Where a user lands after logging in: their own workspace."""
    roles = scope_for(user=user).roles
    if roles & STAFF_ROLES:
        return "desk:dashboard"
    if Role.FIELD_ENGINEER in roles:
        return "field:today"
    if Role.CUSTOMER in roles:
        return "portal:home"
    return ""
