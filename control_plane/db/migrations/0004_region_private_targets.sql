-- Per-region SSRF switch: an operator may let the agents of one region probe private, loopback
-- and link-local addresses (a region that runs inside the operator's own network), without
-- turning the guard off for the whole deployment (``security.allow_private_targets``). Leases of
-- the region carry the effective value to its agents. Off by default: the guard is on.
ALTER TABLE regions ADD COLUMN allow_private_targets boolean NOT NULL DEFAULT false;
