"""Schemathesis hooks of scripts/schemathesis.sh (loaded through SCHEMATHESIS_HOOKS).

One check, `positive_data_acceptance_beside_state`: Schemathesis's `positive_data_acceptance`
(a schema-valid request must not be refused), except for FailedPrecondition. The transcoder
answers FailedPrecondition with HTTP 400 and `"code": 9` in its body, as grpc-gateway and
ZITADEL do; that code says the directory's state refuses the change (the user is deleted or
already inactive, the authenticator is already verified, the token is the last admin token),
which no request schema can state, while a request the schema should have refused is
InvalidArgument (`"code": 3`) and is still reported. Without this, fuzzing, which deletes and
deactivates the users it then writes to, would have to keep nearly every user operation in the
baseline, and the check would no longer see a real rule missing from the schema there.
"""

import schemathesis
from schemathesis.specs.openapi.checks import positive_data_acceptance

FAILED_PRECONDITION = 9


def _grpc_code(response):
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None


@schemathesis.check
def positive_data_acceptance_beside_state(ctx, response, case):
    if response.status_code == 400 and _grpc_code(response) == FAILED_PRECONDITION:
        return None
    return positive_data_acceptance(ctx, response, case)
