"""Channel test sends count against the ``test_now`` rate bucket (the reference: "Both count
against the test_now rate-limit bucket"): the unsaved-config form and the per-channel form
share one budget, and a spent budget is 429 ``RATE_LIMITED`` with nothing sent."""

from __future__ import annotations

from tests.conftest import assert_error
from tests.control_plane.accounts.test_rate_limits import set_budgets
from tests.control_plane.notifications.test_email_and_tests import MailEnv, menv

__all__ = ["menv"]  # the fixture: a control plane whose transports reach a threaded receiver

BASE = "/api/v1/notification-channels"
SLACK = {"type": "slack", "webhook_url": "https://hooks.slack.com/services/T/B/C"}


async def test_both_test_forms_share_the_test_now_bucket(menv: MailEnv) -> None:
    env = menv.env
    await set_budgets(env.db_url, env.owner.org_id, test_now=2)
    cid = await env.channel(SLACK, name="s")
    resp = await env.owner.post(f"{BASE}/test", json={"config": SLACK})
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-ratelimit-limit"] == "2"
    assert (await env.owner.post(f"{BASE}/{cid}/test")).status_code == 200
    sent = len(env.rec.seen)
    for path in (f"{BASE}/test", f"{BASE}/{cid}/test"):
        body = {"config": SLACK} if path == f"{BASE}/test" else None
        resp = await env.owner.post(path, json=body)
        err = assert_error(resp, 429, "RATE_LIMITED")
        assert err["details"]["scope"] == "per_org_test_now"
        assert int(resp.headers["retry-after"]) >= 1
    assert len(env.rec.seen) == sent  # a refused test sends nothing
    # Other writes keep their own budget.
    resp = await env.owner.patch(f"{BASE}/{cid}", json={"name": "still-writable"})
    assert resp.status_code == 200, resp.text


async def test_another_orgs_budget_is_untouched(menv: MailEnv) -> None:
    env = menv.env
    await set_budgets(env.db_url, env.owner.org_id, test_now=1)
    assert (await env.owner.post(f"{BASE}/test", json={"config": SLACK})).status_code == 200
    resp = await env.owner.post(f"{BASE}/test", json={"config": SLACK})
    assert_error(resp, 429, "RATE_LIMITED")
    assert (await env.outsider.post(f"{BASE}/test", json={"config": SLACK})).status_code == 200
