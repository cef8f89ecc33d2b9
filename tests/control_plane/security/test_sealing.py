"""Sealed secrets: AES-GCM with a fresh nonce per value, the key id stored with the value, and
associated data that binds a value to its org, row and field; credentials with verification off
over https are refused."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from control_plane.domain.targets.codec import open_check
from control_plane.security.sealing import Sealer, SecretUnavailable
from control_plane.settings import Settings
from tests.conftest import Persona, assert_error
from tests.control_plane.targets.test_targets_crud import create, http_target, stored_row
from tests.stack import SEALING_KEYS

API = "/api/v1/targets"
PASSWORD = "pw-3e9b51-sealed"
OTHER_KEY = b"9" * 32


def raw(sealed: str) -> bytes:
    """nonce || ciphertext+tag of a ``v1:<kid>:<b64>`` value."""
    return base64.urlsafe_b64decode(sealed.split(":", 2)[2])


def aad(field: str = "basic_auth") -> bytes:
    return Sealer.binding(uuid.UUID(int=1), uuid.UUID(int=2), field)


# -- the sealer on its own ------------------------------------------------------------------------


def test_seal_stores_the_key_id_and_a_fresh_nonce_per_value() -> None:
    sealer = Sealer(SEALING_KEYS, "k1")
    one, two = sealer.seal(PASSWORD, aad()), sealer.seal(PASSWORD, aad())
    assert one.startswith("v1:k1:") and two.startswith("v1:k1:")
    assert Sealer.key_id(one) == "k1"
    assert one != two
    assert raw(one)[:12] != raw(two)[:12], "every value gets its own 96-bit nonce"
    assert PASSWORD.encode() not in raw(one)
    assert sealer.open(one, aad()) == sealer.open(two, aad()) == PASSWORD


def test_open_refuses_a_wrong_binding_a_flipped_bit_and_an_unknown_key() -> None:
    sealer = Sealer(SEALING_KEYS, "k1")
    sealed = sealer.seal(PASSWORD, aad())
    with pytest.raises(SecretUnavailable):
        sealer.open(sealed, aad("bearer_token"))
    with pytest.raises(SecretUnavailable):
        sealer.open(sealed, Sealer.binding(uuid.UUID(int=3), uuid.UUID(int=2), "basic_auth"))
    body = bytearray(raw(sealed))
    body[-1] ^= 1
    tampered = "v1:k1:" + base64.urlsafe_b64encode(bytes(body)).decode()
    with pytest.raises(SecretUnavailable):
        sealer.open(tampered, aad())
    with pytest.raises(SecretUnavailable, match="not configured"):
        sealer.open(Sealer({"k9": OTHER_KEY}, "k9").seal(PASSWORD, aad()), aad())
    # The key id is not trusted to pick any key: k1's value relabelled as k2 does not open.
    with pytest.raises(SecretUnavailable):
        sealer.open(sealed.replace("v1:k1:", "v1:k2:", 1), aad())
    for malformed in ("", "plaintext", "v2:k1:" + sealed.split(":", 2)[2], "v1:k1:%%%"):
        with pytest.raises(SecretUnavailable):
            sealer.open(malformed, aad())


def test_rewrap_moves_a_value_to_the_primary_and_keeps_its_binding() -> None:
    old = Sealer(SEALING_KEYS, "k1").seal(PASSWORD, aad())
    new_sealer = Sealer(SEALING_KEYS, "k2")
    moved = new_sealer.rewrap(old, aad())
    assert Sealer.key_id(moved) == "k2"
    assert Sealer({"k2": SEALING_KEYS["k2"]}, "k2").open(moved, aad()) == PASSWORD
    assert new_sealer.rewrap(moved, aad()) == moved, "a value already on the primary is kept"
    with pytest.raises(SecretUnavailable):
        new_sealer.open(moved, aad("bearer_token"))
    with pytest.raises(SecretUnavailable):
        Sealer({"k1": SEALING_KEYS["k1"]}, "k1").open(moved, aad())


# -- at rest, through the API ---------------------------------------------------------------------


async def test_the_same_password_on_two_targets_is_sealed_to_different_ciphertexts(
    owner: Persona, db_url: str, settings: Settings
) -> None:
    a = await create(owner, http_target("a", basic_auth=["alice", PASSWORD]))
    b = await create(owner, http_target("b", basic_auth=["alice", PASSWORD]))
    rows = [await stored_row(db_url, t["id"]) for t in (a, b)]
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        cur = await conn.execute("SELECT t::text FROM targets t WHERE org_id = %s", (owner.org_id,))
        dumps = [r[0] for r in await cur.fetchall()]
    assert len(dumps) == 2 and all(PASSWORD not in d for d in dumps)
    sealed = [row["secrets"]["basic_auth"] for row in rows]
    assert all(s.startswith("v1:k1:") for s in sealed), "the key id is stored with the value"
    assert sealed[0] != sealed[1]
    assert raw(sealed[0])[:12] != raw(sealed[1])[:12]
    sealer = Sealer(settings.security.sealing_keys, settings.security.primary_key_id)
    for row in rows:
        spec = open_check(sealer, owner.org_id, row["id"], row["spec"], row["secrets"])
        assert getattr(spec, "basic_auth", None) == ("alice", PASSWORD)


async def test_ciphertext_copied_onto_another_orgs_target_does_not_decrypt(
    owner: Persona, outsider: Persona, db_url: str, settings: Settings
) -> None:
    sealer = Sealer(settings.security.sealing_keys, settings.security.primary_key_id)
    mine = await create(owner, http_target("mine", basic_auth=["alice", PASSWORD]))
    theirs = await create(outsider, http_target("theirs", basic_auth=["mallory", "own"]))
    stolen = (await stored_row(db_url, mine["id"]))["secrets"]
    # The attacker's row now carries the victim's ciphertext, byte for byte.
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute(
            "UPDATE targets SET secrets = %s WHERE id = %s", (Jsonb(stolen), theirs["id"])
        )
    row = await stored_row(db_url, theirs["id"])
    assert row["secrets"] == stolen
    with pytest.raises(SecretUnavailable):
        open_check(sealer, outsider.org_id, row["id"], row["spec"], row["secrets"])
    # Same org, same row, but another field: still bound.
    own = await stored_row(db_url, mine["id"])
    with pytest.raises(SecretUnavailable):
        open_check(
            sealer,
            owner.org_id,
            own["id"],
            own["spec"],
            {"bearer_token": own["secrets"]["basic_auth"]},
        )
    # In place it still opens: the failures above are the binding, not a broken value.
    spec = open_check(sealer, owner.org_id, own["id"], own["spec"], own["secrets"])
    assert getattr(spec, "basic_auth", None) == ("alice", PASSWORD)


# -- verify_tls = false with credentials over https ------------------------------------------------


@pytest.mark.parametrize(
    "cred",
    [{"basic_auth": ["alice", PASSWORD]}, {"bearer_token": "tok-9f2"}],
    ids=["basic_auth", "bearer_token"],
)
async def test_credentials_over_https_without_verification_are_refused(
    owner: Persona, db_url: str, cred: dict[str, Any]
) -> None:
    body = http_target(verify_tls=False, **cred)
    assert_error(
        await owner.post(API, json=body), 400, "INVALID_TLS_CRED_COMBO", "/check/verify_tls"
    )
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        count = await (await conn.execute("SELECT count(*) FROM targets")).fetchone()
    assert count == (0,)
    # Verification off without credentials, or credentials with verification on, are fine.
    await create(owner, http_target("no-creds", verify_tls=False))
    await create(owner, http_target("verified", **cred))


async def test_patching_verification_off_on_a_target_with_credentials_is_refused(
    owner: Persona, db_url: str
) -> None:
    target = await create(owner, http_target(bearer_token="tok-9f2"))
    before = await stored_row(db_url, target["id"])
    # A PATCH of the check replaces it whole, so the credential is re-supplied with it.
    check = {**target["check"], "bearer_token": "tok-9f2", "verify_tls": False}
    resp = await owner.patch(f"{API}/{target['id']}", json={"check": check})
    assert_error(resp, 400, "INVALID_TLS_CRED_COMBO", "/check/verify_tls")
    assert await stored_row(db_url, target["id"]) == before
