"""Every knob is declared once (aftercare.config.VARIABLES), validated at start-up, and reaches
Django under its own name; EVENTS_URL is checked by the same rule that builds the broker."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aftercare import config, events

NAMES = [v.name for v in config.VARIABLES]


def test_every_aftercare_django_setting_is_a_declared_variable_with_its_value() -> None:
    from django.conf import settings

    loaded = config.load({})
    by_env = {name: getattr(loaded, field) for field, name in [
        (f, "AFTERCARE_" + f.upper()) for f in loaded.__dataclass_fields__]}
    knobs = [name for name in dir(settings) if name.startswith("AFTERCARE_")]
    assert "AFTERCARE_WATCH_PERIOD_H" in knobs
    # AFTERCARE_WEB_PORT is WEB_PORT, handed to the CRM for its links.
    for name in set(knobs) - {"AFTERCARE_WEB_PORT"}:
        assert name in NAMES, f"{name} is not declared in aftercare.config.VARIABLES"
        if name in by_env:
            assert getattr(settings, name) == by_env[name], name


def test_the_crm_tunables_are_validated_at_start_up() -> None:
    bad = {"AFTERCARE_SLA_AT_RISK_FRACTION": "1", "AFTERCARE_CURRENCY": "euro",
           "AFTERCARE_LABOUR_RATE_EUR": "-1", "AFTERCARE_WATCH_PERIOD_H": "inf",
           "AFTERCARE_PUBLIC_URL": "ftp://example.com", "AFTERCARE_WEBHOOK_ALLOW_HTTP": "maybe",
           "AFTERCARE_LOGIN_WINDOW_S": "0", "AFTERCARE_DASHBOARD_CACHE_S": "-5",
           "AFTERCARE_DEFAULT_PHONE_REGION": "de", "AFTERCARE_RENEWAL_OFFER_DAYS": "x"}
    for name, value in bad.items():
        with pytest.raises(config.ConfigError) as err:
            config.load({name: value})
        assert str(err.value).startswith(f"{name}={value!r}: "), err.value
    ok = config.load({"AFTERCARE_DASHBOARD_CACHE_S": "0", "AFTERCARE_RENEWAL_OFFER_DAYS": "0",
                      "AFTERCARE_PUBLIC_URL": "https://service.example.com"})
    assert (ok.dashboard_cache_s, ok.renewal_offer_days) == (0.0, 0)
    assert ok.public_url == "https://service.example.com"


@given(name=st.sampled_from(NAMES), value=st.text(max_size=40))
def test_any_value_is_accepted_or_refused_naming_the_variable(name: str, value: str) -> None:
    try:
        config.load({name: value})
    except config.ConfigError as exc:
        message = str(exc)
    else:
        return
    assert message.startswith(f"{name}=")


@pytest.mark.parametrize("scheme", sorted(config.EVENT_TRANSPORTS))
def test_every_events_url_scheme_config_accepts_has_a_transport(scheme: str) -> None:
    url = config.load({"EVENTS_URL": f"{scheme}://127.0.0.1:1"}).events_url
    assert events.transport_of(url) == config.EVENT_TRANSPORTS[scheme]


def test_an_events_url_without_a_transport_is_refused_at_start_up() -> None:
    with pytest.raises(config.ConfigError, match="EVENTS_URL='redis://127.0.0.1:6379'"):
        config.load({"EVENTS_URL": "redis://127.0.0.1:6379"})
