-- The delivery claim walks the due pending rows in due order and stops at its batch, instead of
-- judging every pending row and sorting them (at 10,000 pending, 270 ms and 73,000 buffers a
-- batch of 500). Its per-row checks probe small partial indexes: a chat channel's oldest pending
-- row of a kind (the storm hold), and whether it sent a grouped message lately (the follow-up
-- hold), which scanned the channel's whole history before.
CREATE INDEX notifications_claim_idx ON notifications (due_at, channel_id)
    WHERE state = 'pending' AND kind <> 'event';

CREATE INDEX notifications_pending_of_channel_idx ON notifications (channel_id, kind, created_at)
    WHERE state = 'pending' AND kind <> 'event';

-- The pending reminders (the delivery run skips those of incidents no longer open).
CREATE INDEX notifications_pending_reminders_idx ON notifications (incident_id)
    WHERE state = 'pending' AND kind = 'reminder';

CREATE INDEX notifications_grouped_idx ON notifications (channel_id, kind, delivered_at)
    WHERE grouped AND state = 'delivered';

-- Room on each page, so that leasing a row (lease_until, attempts: no indexed column) is a HOT
-- update with no new entries in the table's indexes. Pages written from now on.
ALTER TABLE notifications SET (fillfactor = 80);
