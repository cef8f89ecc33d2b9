-- The operator's actions in the audit log: plans and the abuse deny-list belong to no org, so
-- their rows have no org_id (tenants' reads filter by org and never see them); an operator's
-- action on one org (putting it on a plan) keeps its org_id. GET /operator/audit-log reads
-- every row whose actor is the operator, newest first.
ALTER TABLE audit_log ALTER COLUMN org_id DROP NOT NULL;
CREATE INDEX audit_log_operator_idx ON audit_log (at DESC, id DESC)
    WHERE actor_type = 'operator';
