-- The default plan (``unlimited``: no caps) gets per-minute rate budgets, so every counted
-- /api/v1 answer carries X-RateLimit-* and no one tenant can flood the API. The figures are the
-- reference's top tier (5,000 requests a minute) with the example plans' proportions: reads five
-- times writes, bulk operations 3 % of writes, test-now and check-now a fifth. Only a plan still
-- without any budget is changed: an operator's own choice stands. An operator who wants no
-- budget at all sets them back to null (PATCH /operator/plans/unlimited).
UPDATE plans
SET rate_api_writes = 5000,
    rate_api_reads = 25000,
    rate_bulk_ops = 150,
    rate_test_now = 1000,
    rate_check_now = 1000,
    updated_at = now()
WHERE id = 'unlimited'
  AND rate_api_writes IS NULL AND rate_api_reads IS NULL AND rate_bulk_ops IS NULL
  AND rate_test_now IS NULL AND rate_check_now IS NULL;
