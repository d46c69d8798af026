"""Fixtures for the service CRM: the world before anything has happened (Nordwerk Foods and
its compressor, ``tests.support.world.build_world``), alert events the way the anomaly worker
publishes them, a manager who may approve offers. The desk agent is the suite's one
(``tests/conftest.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from aftercare.events import AlertEvent
from tests import factories as f
from tests.support.crm import make_event
from tests.support.world import World, build_world


@pytest.fixture
def world(db: None) -> World:
    """Nordwerk Foods, plant in Hamburg (region north), compressor cmp-n1 out of warranty."""
    return build_world()


@pytest.fixture
def event() -> Callable[..., AlertEvent]:
    return make_event


@pytest.fixture
def manager(db: None) -> Any:
    from django.contrib.auth.models import Permission

    user = f.UserFactory(username="manager")
    user.user_permissions.add(Permission.objects.get(codename="approve_offer"))
    return type(user).objects.get(pk=user.pk)  # fresh instance: permission cache empty
