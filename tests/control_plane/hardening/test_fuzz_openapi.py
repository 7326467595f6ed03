"""Schema-driven fuzzing of the whole HTTP API (schemathesis + hypothesis) against the real app and Triton.

Every operation of the OpenAPI document gets generated requests (valid and invalid) with a real
tenant key (or the admin token on /admin): no 5xx anywhere, and every response matches what the
document declares (status code, content type, body schema). Examples are few per operation and
derandomized, so the run is reproducible and takes about a minute; raise FUZZ_EXAMPLES to go further.
"""

from __future__ import annotations

import os

import hypothesis
import pytest
import schemathesis
from gateway_helpers import ADMIN_TOKEN, run_gateway
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "6"))
FUZZ_PHASES = [hypothesis.Phase.explicit, hypothesis.Phase.generate]  # no shrinking: report, do not minimise
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def live(triton_server, tmp_path_factory):
    with run_gateway(tmp_path_factory.mktemp("gw-fuzz"), triton_server) as gw:
        yield gw


@pytest.fixture(scope="module")
async def tenant_key(live):
    return (await live.tenant(requests_per_minute=100_000, requests_per_hour=1_000_000,
                              requests_per_day=10_000_000))[1]


@pytest.fixture(scope="module")
async def rotating_key(live):
    """A tenant of its own for POST /v1/tenant/keys/rotate: rotating revokes the caller's key, which
    would leave every later operation with a refused key."""
    return (await live.tenant(requests_per_minute=100_000))[1]


def test_api_conforms_to_its_schema(live, tenant_key, rotating_key):
    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
    failures: dict[str, str] = {}
    tried = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        tried += 1

        @hypothesis.given(case=operation.as_strategy())
        @hypothesis.settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                             suppress_health_check=list(hypothesis.HealthCheck), phases=FUZZ_PHASES)
        def fuzz(case) -> None:
            token = ADMIN_TOKEN if case.path.startswith("/admin") else tenant_key
            if case.path == "/v1/tenant/keys/rotate":
                token = rotating_key
            case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS, timeout=60)

        try:
            fuzz()
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collect every operation's failure
            failures[operation.label] = str(exc)[:1500]
    assert tried >= 15  # the whole API was walked
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
