"""Schemathesis against the OpenAPI schema the app serves, for each role and for anonymous
callers: every operation, bounded examples (CI), the app over WSGI on the real PostgreSQL.

Checked per response: no server error, the status code is documented, the body matches the
schema for that status, the content type and headers are as documented, and a request the
schema says is invalid is refused with a 4xx. Half the generated cases use ids of objects that
exist (in and out of the caller's scope), so the checks reach real answers, not only 404s.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import checks
from schemathesis.core.failures import FailureGroup

from service_crm.services.api_tokens import api_token_create
from tests.support.world import ServedWorld

pytestmark = [pytest.mark.db, pytest.mark.slow]

# Bounded for CI; raise AFTERCARE_FUZZ_EXAMPLES for a deeper run.
EXAMPLES = int(os.environ.get("AFTERCARE_FUZZ_EXAMPLES", "12"))
CHECKS = [checks.not_a_server_error, checks.status_code_conformance,
          checks.content_type_conformance, checks.response_schema_conformance,
          checks.response_headers_conformance, checks.negative_data_rejection]


def _api_schema() -> Any:
    from django.core.wsgi import get_wsgi_application
    from drf_spectacular.generators import SchemaGenerator
    from rest_framework.utils.encoders import JSONEncoder

    raw = SchemaGenerator().get_schema(request=None, public=True)
    schema = schemathesis.openapi.from_dict(json.loads(json.dumps(raw, cls=JSONEncoder)))
    schema.app = get_wsgi_application()
    return schema


@pytest.fixture
def _keep_test_connection() -> Iterator[None]:
    """The WSGI handler closes the database connection after each request; the test's
    transaction lives on it (Django's own test client does the same)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.mark.usefixtures("_keep_test_connection")
@pytest.mark.parametrize("persona", ["desk_agent", "service_manager", "field_engineer",
                                     "customer_user", None])
def test_api_answers_match_the_schema(world: ServedWorld, persona: str | None,
                                      request: pytest.FixtureRequest) -> None:
    headers: dict[str, str] = {}
    if persona is not None:
        user = request.getfixturevalue(persona)
        headers["Authorization"] = f"Token {api_token_create(user=user, name='fuzz').key}"
    ids = sorted({obj.pk for side in (world.north, world.south) for obj in (
        side.account, side.asset, side.ticket, side.work_order, side.offer, side.episode,
        side.alert)})
    devices = ["cmp-n1", "pmp-n1", "cmp-s1"]
    failures: dict[str, list[str]] = {}
    requests = operations = 0

    for result in _api_schema().get_all_operations():
        operation = result.ok()
        operations += 1

        def use_real_ids(drawn: tuple[Any, bool, int, str]) -> Any:
            case, real, pk, device = drawn
            if real and case.path_parameters:
                for name in case.path_parameters:
                    case.path_parameters[name] = device if name == "device_key" else pk
            return case

        cases = st.tuples(operation.as_strategy(), st.booleans(), st.sampled_from(ids),
                          st.sampled_from(devices)).map(use_real_ids)

        @given(case=cases)
        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        def probe(case: Any) -> None:
            nonlocal requests
            requests += 1
            # Each example starts from the same world, and a database error in one (a failure
            # in itself) cannot abort the test's transaction for the rest.
            savepoint = transaction.savepoint()
            try:
                response = case.call(headers=headers)
            finally:
                transaction.savepoint_rollback(savepoint)
            try:
                case.validate_response(response, checks=CHECKS)
            except (AssertionError, FailureGroup) as exc:
                failures.setdefault(case.operation.label, []).append(
                    str(exc).split("Reproduce with")[0])

        probe()

    print(f"schemathesis as {persona}: {operations} operations, {requests} requests, "
          f"{sum(map(len, failures.values()))} failing")
    assert requests >= EXAMPLES * 20
    report = "\n".join(f"{label}: {len(found)} failing, e.g. {found[0][:600]}"
                       for label, found in failures.items())
    assert not failures, report
