"""Request and response bodies of /operator/agents."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar

import msgspec
from msgspec import UNSET, UnsetType

# A wrong type under one of these pointers answers with the field's own code; see
# decoding.decode_body.
FIELD_CODES: dict[str, str] = {"/name": "INVALID_NAME"}


class AgentCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    __field_codes__: ClassVar[dict[str, str]] = FIELD_CODES

    name: str
    # The id of an existing region; the agent leases that region's work only.
    region: str


class AgentUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """PATCH body: an omitted field keeps its value. The region of an agent never changes."""

    __field_codes__: ClassVar[dict[str, str]] = FIELD_CODES

    name: str | UnsetType = UNSET


class Agent(msgspec.Struct, kw_only=True):
    """An agent as every read shows it: never its token or the token's hash."""

    id: uuid.UUID
    name: str
    region: str
    created_at: datetime
    last_seen_at: datetime | None
    revoked_at: datetime | None
    # The stored lookup prefix of its token (``sm_agent_`` + 8 characters), to tell tokens apart.
    token_prefix: str


class NewAgent(Agent, kw_only=True):
    """The create response: the agent plus its bearer token, shown this once."""

    token: str
