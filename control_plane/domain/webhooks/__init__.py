"""Event webhooks: org-level subscriptions to Vigil's events, delivered through the outbox."""
