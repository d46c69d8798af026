"""The consumer picks its transport from EVENTS_URL (no broker needed to build it)."""

from __future__ import annotations

import pytest

from aftercare.config import ConfigError
from service_crm.adapters.consumer import Consumer


@pytest.mark.parametrize("url", ["mqtt://u:p@127.0.0.1:1883", "nats://127.0.0.1:4222",
                                 "amqp://guest:guest@127.0.0.1:5672/"])
def test_builds_a_subscriber_for_each_supported_scheme(url: str) -> None:
    consumer = Consumer(url)
    assert consumer._subscriber is not None


def test_unsupported_scheme_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="EVENTS_URL"):
        Consumer("redis://127.0.0.1:6379")
