"""The machine codes a result carries in ``error_code``, defined once for both sides.

The agent writes them into ``CheckResult.error_code``; the control plane stores them, writes a
few of its own into the same column (a slot nobody ran, a credential it cannot decrypt, a
heartbeat's ``/fail`` ping) and compares against some (a ``THROTTLED`` result counts neither as
failing nor as recovered). Tenants see them in results and alerts, so they never change.
"""

from __future__ import annotations

# --- Any check kind ---------------------------------------------------------------------------
TIMEOUT = "TIMEOUT"
DNS_FAILURE = "DNS_FAILURE"
CONNECTION_REFUSED = "CONNECTION_REFUSED"
CONNECTION_FAILED = "CONNECTION_FAILED"
CONNECTION_RESET = "CONNECTION_RESET"
TLS_ERROR = "TLS_ERROR"
# 429 or 503 with Retry-After: the service is there and asks us to back off (``degraded``, and
# harmless to incidents).
RATE_LIMITED = "RATE_LIMITED"
# 429 or 503 without Retry-After: the service is not serving us and gives no sign of when it
# will (``degraded``; lasting longer than the confirmations, it opens a ``degraded`` incident).
UNAVAILABLE = "UNAVAILABLE"
# The probe could not run the check at all (bad spec, unknown kind, a bug in a runner).
PROBE_ERROR = "PROBE_ERROR"
# The target (or a redirect hop) is, or resolves to, an address the SSRF guard blocks.
SSRF_BLOCKED = "SSRF_BLOCKED"
# Not run: the agent's per-(org, host) concurrency cap was reached (status ``degraded``).
THROTTLED = "THROTTLED"

# --- http -------------------------------------------------------------------------------------
INVALID_RESPONSE = "INVALID_RESPONSE"
UNEXPECTED_STATUS = "UNEXPECTED_STATUS"
BODY_MISMATCH = "BODY_MISMATCH"
# An HTTP assertion (status_code, response_time, json_path, header, body) did not hold.
ASSERTION_FAILED = "ASSERTION_FAILED"
TOO_MANY_REDIRECTS = "TOO_MANY_REDIRECTS"

# --- dns --------------------------------------------------------------------------------------
DNS_NXDOMAIN = "DNS_NXDOMAIN"
DNS_NO_ANSWER = "DNS_NO_ANSWER"
DNS_MISMATCH = "DNS_MISMATCH"

# --- tls_cert ---------------------------------------------------------------------------------
CERT_EXPIRED = "CERT_EXPIRED"
CERT_EXPIRING = "CERT_EXPIRING"

# --- domain_expiry ----------------------------------------------------------------------------
DOMAIN_EXPIRED = "DOMAIN_EXPIRED"
DOMAIN_EXPIRING = "DOMAIN_EXPIRING"
DOMAIN_NOT_FOUND = "DOMAIN_NOT_FOUND"
RDAP_BOOTSTRAP_FAILED = "RDAP_BOOTSTRAP_FAILED"
RDAP_UNSUPPORTED_TLD = "RDAP_UNSUPPORTED_TLD"
RDAP_ERROR = "RDAP_ERROR"
RDAP_NO_EXPIRATION = "RDAP_NO_EXPIRATION"

# --- icmp -------------------------------------------------------------------------------------
ICMP_NOT_PERMITTED = "ICMP_NOT_PERMITTED"
PACKET_LOSS = "PACKET_LOSS"
HOST_UNREACHABLE = "HOST_UNREACHABLE"

# --- Written by the control plane, never by an agent ------------------------------------------
# No agent ran the slot before the next one was due (status ``missed``).
MISSED = "MISSED"
# A credential of the check cannot be decrypted with the configured keys (status ``error``).
SECRET_UNAVAILABLE = "SECRET_UNAVAILABLE"
# A heartbeat job reported failure through its ``/fail`` ping (status ``down``).
HEARTBEAT_FAILED = "HEARTBEAT_FAILED"
# A heartbeat period passed without any ping (status ``down``).
HEARTBEAT_MISSED = "HEARTBEAT_MISSED"
