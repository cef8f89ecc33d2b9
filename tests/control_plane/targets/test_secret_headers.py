"""Header values marked secret (``secret_headers``, plus Authorization, Proxy-Authorization and
Cookie always): sealed at rest one envelope each, redacted on every read, refused when sent back
redacted, kept by a PATCH that omits the check, and handed in the clear to the agent's lease."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import pytest

from control_plane.domain.targets.codec import open_check, redacted_check
from control_plane.security.sealing import Sealer, SecretUnavailable
from probe_agent.checks.http import UnsupportedSpec, request_headers
from shared.checks import REDACTED, CheckSpec, HttpCheck, secret_header_names
from shared.validation import SpecError, validate_check
from tests.conftest import Persona, assert_error
from tests.control_plane.targets.test_targets_crud import create, http_target, stored_row
from tests.monitoring_helpers import fetch, make_agent, make_due

API = "/api/v1/targets"
API_KEY = "key-8c02e1-not-in-the-db"
SESSION = "session=ck-5d7a43-not-in-the-db"
AUTH = "Bearer auth-19be6f-not-in-the-db"
PROXY = "Basic cHJveHktNzAxYw=="
PLAINTEXTS = (API_KEY, SESSION, AUTH, PROXY)

HEADERS = {
    "X-Api-Key": API_KEY,
    "Cookie": SESSION,
    "Authorization": AUTH,
    "Proxy-Authorization": PROXY,
    "X-Plain": "visible",
}
REDACTED_HEADERS = {**{k: REDACTED for k in HEADERS}, "X-Plain": "visible"}


def keyed(name: str = "keyed", **check: Any) -> dict[str, Any]:
    return http_target(name, headers=dict(HEADERS), secret_headers=["x-api-key"], **check)


def spec(raw: dict[str, Any]) -> CheckSpec:
    result: CheckSpec = msgspec.convert(raw, CheckSpec)
    return result


# -- the wire type and shared validation ---------------------------------------------------------


def test_secret_header_names_are_case_insensitive_and_include_the_fixed_three() -> None:
    check = HttpCheck(url="https://example.com/", secret_headers=["X-API-Key"])
    assert secret_header_names(check) == {
        "x-api-key",
        "authorization",
        "proxy-authorization",
        "cookie",
    }
    assert HttpCheck(url="https://example.com/").secret_headers == []


HTTPS = {"type": "http", "url": "https://example.com/"}


@pytest.mark.parametrize(
    ("raw", "code", "field"),
    [
        (
            {**HTTPS, "headers": {"X-A": "v"}, "secret_headers": ["X-B"]},
            "VALIDATION_ERROR",
            "/secret_headers/0",
        ),
        (
            {**HTTPS, "headers": {"X-A": "v"}, "secret_headers": ["x-a", "Cookie"]},
            "VALIDATION_ERROR",
            "/secret_headers/1",
        ),
        (
            {**HTTPS, "headers": {"X-A": "1", "x-a": "2"}},
            "INVALID_HEADER",
            "/headers/x-a",
        ),
        (
            {**HTTPS, "verify_tls": False, "headers": {"Authorization": "Bearer t"}},
            "INVALID_TLS_CRED_COMBO",
            "/verify_tls",
        ),
        (
            {**HTTPS, "verify_tls": False, "headers": {"cookie": "s=1"}},
            "INVALID_TLS_CRED_COMBO",
            "/verify_tls",
        ),
        (
            {**HTTPS, "verify_tls": False, "headers": {"X-K": "k"}, "secret_headers": ["x-k"]},
            "INVALID_TLS_CRED_COMBO",
            "/verify_tls",
        ),
        (
            {**HTTPS, "headers": {"X-K": REDACTED}, "secret_headers": ["X-K"]},
            "REDACTION_SENTINEL",
            "/headers/X-K",
        ),
    ],
)
def test_validation_codes_and_pointers(raw: dict[str, Any], code: str, field: str) -> None:
    with pytest.raises(SpecError) as info:
        validate_check(spec(raw))
    assert (info.value.code, info.value.field) == (code, field)


@pytest.mark.parametrize(
    "raw",
    [
        {**HTTPS, "headers": {"x-api-key": "k"}, "secret_headers": ["X-API-KEY"]},
        # Without a secret header value, verify_tls = false over https is allowed.
        {**HTTPS, "verify_tls": False, "headers": {"X-Plain": "v"}},
        # Over plain http there is no certificate to skip.
        {"type": "http", "url": "http://example.com/", "verify_tls": False, **{"headers": HEADERS}},
    ],
)
def test_valid_secret_header_specs(raw: dict[str, Any]) -> None:
    validate_check(spec(raw))


def test_the_agent_refuses_a_redacted_header_value() -> None:
    check = HttpCheck(url="https://example.com/", headers={"X-K": REDACTED}, secret_headers=["X-K"])
    with pytest.raises(UnsupportedSpec):
        request_headers(check)
    sent = request_headers(HttpCheck(url="https://example.com/", headers=dict(HEADERS)))
    assert {k: sent[k] for k in HEADERS} == HEADERS


# -- sealed at rest ------------------------------------------------------------------------------


async def test_secret_header_values_are_sealed_one_envelope_each(
    owner: Persona, db_url: str, settings: Any
) -> None:
    created = await create(owner, keyed())
    dump = await fetch(
        db_url, "SELECT row_to_json(t)::text FROM targets t WHERE id = %s", created["id"]
    )
    for secret in PLAINTEXTS:
        assert secret not in dump[0][0]
    row = await stored_row(db_url, created["id"])
    # The public spec keeps every header's name and place; only the plain one keeps its value.
    assert row["spec"]["headers"] == REDACTED_HEADERS
    assert row["spec"]["secret_headers"] == ["x-api-key"]
    assert set(row["secrets"]) == {
        "headers.x-api-key",
        "headers.cookie",
        "headers.authorization",
        "headers.proxy-authorization",
    }
    assert all(v.startswith("v1:k1:") for v in row["secrets"].values())
    assert len(set(row["secrets"].values())) == 4

    sealer = Sealer(settings.security.sealing_keys, settings.security.primary_key_id)
    opened = open_check(sealer, owner.org_id, row["id"], row["spec"], row["secrets"])
    assert isinstance(opened, HttpCheck) and opened.headers == HEADERS
    # Each value is bound to its org, target and header: moved anywhere else it does not open.
    swapped = {
        **row["secrets"],
        "headers.cookie": row["secrets"]["headers.authorization"],
        "headers.authorization": row["secrets"]["headers.cookie"],
    }
    with pytest.raises(SecretUnavailable):
        open_check(sealer, owner.org_id, row["id"], row["spec"], swapped)
    with pytest.raises(SecretUnavailable):
        open_check(sealer, uuid.uuid4(), row["id"], row["spec"], row["secrets"])
    with pytest.raises(SecretUnavailable):
        open_check(sealer, owner.org_id, uuid.uuid4(), row["spec"], row["secrets"])
    # A header whose sealed value is missing fails closed instead of leasing the sentinel.
    missing = {k: v for k, v in row["secrets"].items() if k != "headers.x-api-key"}
    with pytest.raises(SecretUnavailable):
        open_check(sealer, owner.org_id, row["id"], row["spec"], missing)


async def test_a_secret_header_stored_in_the_clear_is_still_redacted_on_reads(
    owner: Persona, db_url: str, settings: Any
) -> None:
    """A row written before its header was secret: reads hide it, the agent still gets it."""
    created = await create(owner, http_target(headers={"X-Plain": "visible"}))
    row = await stored_row(db_url, created["id"])
    legacy = {**row["spec"], "headers": {"Authorization": AUTH, "X-Plain": "visible"}}
    await fetch(
        db_url,
        "UPDATE targets SET spec = %s::jsonb WHERE id = %s",
        msgspec.json.encode(legacy).decode(),
        created["id"],
    )
    read = await owner.get(f"{API}/{created['id']}")
    assert AUTH not in read.text
    assert read.json()["check"]["headers"] == {"Authorization": REDACTED, "X-Plain": "visible"}
    assert AUTH not in (await owner.get(API)).text
    sealer = Sealer(settings.security.sealing_keys, settings.security.primary_key_id)
    opened = open_check(sealer, owner.org_id, row["id"], legacy, {})
    assert isinstance(opened, HttpCheck) and opened.headers["Authorization"] == AUTH
    redacted = redacted_check(legacy, {})
    assert isinstance(redacted, HttpCheck) and redacted.headers["Authorization"] == REDACTED


# -- redacted on every read ----------------------------------------------------------------------


async def test_every_read_redacts_secret_header_values(owner: Persona) -> None:
    responses = [await owner.post(API, json=keyed())]
    assert responses[0].status_code == 201, responses[0].text
    tid = responses[0].json()["id"]
    url = f"{API}/{tid}"
    responses.append(await owner.get(url))
    responses.append(await owner.get(API))
    responses.append(await owner.get(API, params={"q": "keyed"}))
    responses.append(await owner.patch(url, json={"tags": ["t"]}))
    replaced = await owner.patch(url, json={"check": keyed()["check"]})
    assert replaced.status_code == 200, replaced.text
    responses.append(replaced)
    for resp in responses:
        assert resp.status_code in (200, 201), resp.text
        for secret in PLAINTEXTS:
            assert secret not in resp.text
    checks = [r.json()["check"] for r in responses if "check" in r.json()]
    checks += [t["check"] for r in responses if "items" in r.json() for t in r.json()["items"]]
    assert len(checks) == 6
    for check in checks:
        assert check["headers"] == REDACTED_HEADERS
        assert check["secret_headers"] == ["x-api-key"]


async def test_another_org_cannot_read_a_target_with_secret_headers(
    owner: Persona, outsider: Persona
) -> None:
    created = await create(owner, keyed())
    assert_error(await outsider.get(f"{API}/{created['id']}"), 404, "TARGET_NOT_FOUND")
    assert_error(
        await outsider.patch(f"{API}/{created['id']}", json={"check": keyed()["check"]}),
        404,
        "TARGET_NOT_FOUND",
    )
    listed = await outsider.get(API)
    assert listed.json()["items"] == []
    assert all(secret not in listed.text for secret in PLAINTEXTS)


# -- writes: the sentinel, PATCH semantics -------------------------------------------------------


async def test_a_redacted_secret_header_sent_back_is_refused(owner: Persona) -> None:
    created = await create(
        owner, http_target(headers={"X-Api-Key": API_KEY}, secret_headers=["X-Api-Key"])
    )
    url = f"{API}/{created['id']}"
    read = (await owner.get(url)).json()
    assert read["check"]["headers"] == {"X-Api-Key": REDACTED}
    assert_error(
        await owner.patch(url, json={"check": read["check"]}),
        400,
        "REDACTION_SENTINEL",
        "/check/headers/X-Api-Key",
    )
    # Dropping the name from secret_headers does not turn the sentinel into a value either.
    unmarked = {**read["check"], "secret_headers": []}
    assert_error(
        await owner.patch(url, json={"check": unmarked}),
        400,
        "REDACTION_SENTINEL",
        "/check/headers/X-Api-Key",
    )
    body = {k: read[k] for k in ("name", "check", "interval", "tags")}
    assert_error(
        await owner.post(API, json=body), 400, "REDACTION_SENTINEL", "/check/headers/X-Api-Key"
    )


async def test_secret_header_write_errors_through_the_api(owner: Persona) -> None:
    assert_error(
        await owner.post(API, json=http_target(headers={"X-A": "v"}, secret_headers=["X-B"])),
        400,
        "VALIDATION_ERROR",
        "/check/secret_headers/0",
    )
    assert_error(
        await owner.post(API, json=http_target(verify_tls=False, headers={"Cookie": "s=1"})),
        400,
        "INVALID_TLS_CRED_COMBO",
        "/check/verify_tls",
    )
    assert_error(
        await owner.post(API, json=http_target(headers={"X-A": "1", "x-a": "2"})),
        400,
        "INVALID_HEADER",
        "/check/headers/x-a",
    )


async def test_patch_keeps_or_replaces_secret_headers_like_other_credentials(
    owner: Persona, db_url: str, settings: Any
) -> None:
    sealer = Sealer(settings.security.sealing_keys, settings.security.primary_key_id)
    created = await create(owner, keyed())
    url = f"{API}/{created['id']}"
    before = await stored_row(db_url, created["id"])

    # Omitting the check keeps every stored value, byte for byte.
    resp = await owner.patch(url, json={"name": "renamed", "interval": 120})
    assert resp.status_code == 200, resp.text
    kept = await stored_row(db_url, created["id"])
    assert (kept["spec"], kept["secrets"]) == (before["spec"], before["secrets"])

    # A check re-supplying the values replaces them; a header no longer sent is gone.
    new_key = "key-new-0b7d"
    resp = await owner.patch(
        url,
        json={
            "check": {
                **HTTPS,
                "headers": {"X-Api-Key": new_key, "X-Plain": "visible"},
                "secret_headers": ["X-Api-Key"],
            }
        },
    )
    assert resp.status_code == 200, resp.text
    assert new_key not in resp.text
    after = await stored_row(db_url, created["id"])
    assert set(after["secrets"]) == {"headers.x-api-key"}
    opened = open_check(sealer, owner.org_id, after["id"], after["spec"], after["secrets"])
    assert isinstance(opened, HttpCheck)
    assert opened.headers == {"X-Api-Key": new_key, "X-Plain": "visible"}

    # Unmarking the header stores its (re-supplied) value in the clear and shows it.
    resp = await owner.patch(url, json={"check": {**HTTPS, "headers": {"X-Api-Key": "now-public"}}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["check"]["headers"] == {"X-Api-Key": "now-public"}
    assert (await stored_row(db_url, created["id"]))["secrets"] == {}


# -- the lease -----------------------------------------------------------------------------------


async def test_the_agent_receives_the_real_header_values_in_its_lease(
    owner: Persona, operator: Persona, db_url: str
) -> None:
    created = await create(owner, keyed())
    agent = await make_agent(operator)
    await make_due(db_url, created["id"])
    resp = await agent.lease()
    assert resp.status_code == 200, resp.text
    (lease,) = resp.json()["leases"]
    assert lease["target_id"] == created["id"]
    assert lease["check"]["headers"] == HEADERS
    assert REDACTED not in resp.text
