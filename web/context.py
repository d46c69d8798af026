"""Template context: the user's roles decide the navigation."""

from __future__ import annotations

from django.http import HttpRequest

from service_crm.selectors.access import STAFF_ROLES, Role, scope_for


def nav(request: HttpRequest) -> dict[str, object]:
    roles = scope_for(user=request.user).roles
    return {"is_desk": bool(roles & STAFF_ROLES), "is_engineer": Role.FIELD_ENGINEER in roles,
            "is_customer": Role.CUSTOMER in roles}
