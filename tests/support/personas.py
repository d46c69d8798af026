"""Users for tests: one password for all, and a user with a role."""

from __future__ import annotations

from typing import Any

from tests import factories as f

PASSWORD = "correct horse battery staple"


def user(username: str) -> Any:
    """A user who can log in with :data:`PASSWORD`."""
    person = f.UserFactory(username=username)
    person.set_password(PASSWORD)
    person.save()
    return person


def user_with_role(username: str, role: Any) -> Any:
    """A user with one of ``web.roles.Role``, fetched again so no permission is cached."""
    from web.roles import assign_role

    person = user(username)
    assign_role(user=person, role=role)
    return f.fresh(person)


def linked_user(username: str, person: Any) -> Any:
    """A user who logs in as ``person`` (an ``Engineer`` or a ``Contact``, linked by its
    ``user``): that link is what scopes them."""
    login = user(username)
    type(person).objects.filter(pk=person.pk).update(user=login)
    return f.fresh(login)
