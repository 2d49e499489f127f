"""Schemathesis hooks for make schemathesis (loaded through SCHEMATHESIS_HOOKS by the driver).

An Idempotency-Key makes the API answer a second, different body under the same key with a 422
(by design). Generated keys repeat a lot ("0", "a", ...), which would turn most bulk-enroll and
create-enrollment cases into 422s and hide their 200/201 bodies from the schema checks. So a
valid generated key is made unique per request; invalid ones (too long, non-printable) are kept,
so the 400 for a bad key is still exercised, and one case in ten keeps its key for the 422 path.
"""

import random
import uuid

import schemathesis

HEADER = "idempotency-key"


def _valid(value):
    return isinstance(value, str) and 0 < len(value) <= 255 and all(0x20 <= ord(c) <= 0x7E for c in value)


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    if not case.headers:
        return
    for name in list(case.headers):
        if name.lower() == HEADER and _valid(case.headers[name]) and random.random() >= 0.1:
            case.headers[name] = "st-" + uuid.uuid4().hex
