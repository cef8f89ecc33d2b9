-- name: count_org_channels
SELECT count(*) AS n FROM channels WHERE org_id = %(org_id)s;

-- name: insert_channel
INSERT INTO channels (id, org_id, name, kind, config, secrets, enabled, write_source,
                      verified_at, verify_token_hash, verify_expires_at)
VALUES (%(id)s, %(org_id)s, %(name)s, %(kind)s, %(config)s, %(secrets)s, %(enabled)s,
        %(write_source)s, %(verified_at)s, %(verify_token_hash)s, %(verify_expires_at)s)
ON CONFLICT (org_id, name) DO NOTHING
RETURNING id;

-- name: get_channel
SELECT * FROM channels WHERE org_id = %(org_id)s AND id = %(id)s;

-- name: lock_channel
SELECT * FROM channels WHERE org_id = %(org_id)s AND id = %(id)s FOR UPDATE;

-- name: name_taken
SELECT 1 AS taken FROM channels WHERE org_id = %(org_id)s AND name = %(name)s AND id <> %(id)s;

-- name: list_channels
SELECT * FROM channels WHERE org_id = %(org_id)s ORDER BY created_at, id
LIMIT %(limit)s OFFSET %(offset)s;

-- name: update_channel
UPDATE channels
SET name = %(name)s, kind = %(kind)s, config = %(config)s, secrets = %(secrets)s,
    enabled = %(enabled)s, write_source = %(write_source)s, updated_at = now(),
    disabled_reason = CASE WHEN %(enabled)s THEN NULL ELSE disabled_reason END,
    verified_at = %(verified_at)s, verify_token_hash = %(verify_token_hash)s,
    verify_expires_at = %(verify_expires_at)s,
    consecutive_failures = CASE WHEN %(reset_circuit)s THEN 0 ELSE consecutive_failures END,
    circuit_open_until = CASE WHEN %(reset_circuit)s THEN NULL ELSE circuit_open_until END
WHERE org_id = %(org_id)s AND id = %(id)s;

-- name: delete_channel
-- Its alert bindings (target_alerts) and notifications go with it (ON DELETE CASCADE).
DELETE FROM channels WHERE org_id = %(org_id)s AND id = %(id)s;

-- name: verify_channel
UPDATE channels
SET verified_at = now(), verify_token_hash = NULL, verify_expires_at = NULL
WHERE verify_token_hash = %(hash)s AND verify_expires_at > now()
RETURNING id;

-- name: note_verification_sent
-- The resend cap counts per channel and day.
UPDATE channels
SET verify_token_hash = %(hash)s, verify_expires_at = now() + interval '24 hours',
    verify_sent = CASE WHEN verify_day = current_date THEN verify_sent + 1 ELSE 1 END,
    verify_day = current_date
WHERE id = %(id)s AND org_id = %(org_id)s
RETURNING verify_sent;

-- name: incident_owned
SELECT id FROM incidents WHERE org_id = %(org_id)s AND id = %(id)s;

-- name: incident_notifications
SELECT n.id, n.channel_id, c.name AS channel_name, c.kind AS channel_kind, n.kind, n.state,
       n.attempts, n.due_at, n.created_at, n.delivered_at, n.last_error,
       (n.state = 'pending' AND i.in_maintenance AND EXISTS (
            SELECT 1 FROM maintenance_windows w
            WHERE w.org_id = i.org_id AND now() >= w.starts_at AND now() < w.ends_at
              AND (w.all_targets OR EXISTS (SELECT 1 FROM maintenance_targets mt
                                            WHERE mt.window_id = w.id
                                              AND mt.target_id = i.target_id)))) AS held,
       coalesce((SELECT json_agg(json_build_object(
                    'at', a.at, 'outcome', a.outcome, 'status_code', a.status_code,
                    'latency_ms', a.latency_ms, 'error', a.error) ORDER BY a.at, a.id)
                 FROM notification_attempts a WHERE a.notification_id = n.id), '[]'::json)
           AS attempt_log
FROM notifications n
JOIN channels c ON c.id = n.channel_id
JOIN incidents i ON i.id = n.incident_id
WHERE n.incident_id = %(incident_id)s AND n.org_id = %(org_id)s
ORDER BY n.created_at, n.id;

-- name: retry_notification
-- Re-queues a dead letter (anything else is left as it is).
UPDATE notifications
SET state = 'pending', due_at = now(), lease_until = NULL, attempts = 0
WHERE id = %(id)s AND incident_id = %(incident_id)s AND org_id = %(org_id)s
RETURNING state;

-- name: notification_state
SELECT state FROM notifications
WHERE id = %(id)s AND incident_id = %(incident_id)s AND org_id = %(org_id)s;
