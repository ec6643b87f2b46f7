"""Schema-driven testing of the live API from its own OpenAPI document: whatever schemathesis
generates (valid and invalid parameters, odd headers), the API never answers with a 500 and its
answers match what the document promises.

Hypothesis drives schemathesis's strategies directly (schemathesis's pytest plugin does not
support pytest 9 yet).
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


def operations(api):
    schema = schemathesis.openapi.from_url(f"{api.url}/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize(("credential", "examples"), [("master", 60), ("coreldove", 30)])
def test_api_never_fails_on_generated_input(api, credential, examples):
    ops = operations(api)
    assert len(ops) >= 4
    for operation in ops:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def exercise(case):
            headers = dict(case.headers or {})
            # Generated credentials only reach the 401 paths; a real key reaches the handlers.
            if not headers.get("X-API-Key"):
                headers["X-API-Key"] = api.keys[credential]
            case.headers = headers
            case.call_and_validate(checks=CHECKS)

        exercise()
