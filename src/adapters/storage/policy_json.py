"""A worker's security policy in a ``workers.security_policy`` column: the wire's proto3 JSON
(``adapters.twirp.isolation_mapping``), so that the stored form and the registered one never
differ.
``{}`` (also what the column holds for workers registered before it existed) allows everything.
"""

from __future__ import annotations

import json

from adapters.twirp.errors import ProtocolDecodeError
from adapters.twirp.isolation_mapping import decode_security_policy, encode_security_policy
from domain.policy import SecurityPolicy
from domain.store import StoreError


def dumps_policy(policy: SecurityPolicy | None) -> str:
    """Return a policy as JSON text (None, a worker that reported none, as ``{}``)."""
    return json.dumps(encode_security_policy(policy or SecurityPolicy()), sort_keys=True)


def loads_policy(text: str) -> SecurityPolicy:
    """Read a policy written by ``dumps_policy``."""
    try:
        return decode_security_policy(json.loads(text or "{}"))
    except (ValueError, ProtocolDecodeError) as error:
        raise StoreError(f"stored security policy is unreadable: {error}") from error
