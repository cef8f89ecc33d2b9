-- Event webhooks: subscriptions (service.py), the events written into the notification outbox
-- in the transaction of the change (events.py), and their delivery (delivery.py).

-- name: insert_webhook
INSERT INTO webhooks (id, org_id, url, events, secret, enabled, write_source)
VALUES (%(id)s, %(org_id)s, %(url)s, %(events)s, %(secret)s, %(enabled)s, %(write_source)s);

-- name: get_webhook
SELECT id, org_id, url, events, secret, enabled, write_source, circuit_open_until, created_at,
       updated_at
FROM webhooks WHERE org_id = %(org_id)s AND id = %(id)s;

-- name: lock_webhook
SELECT id, org_id, url, events, secret, enabled, write_source, circuit_open_until, created_at,
       updated_at
FROM webhooks WHERE org_id = %(org_id)s AND id = %(id)s FOR UPDATE;

-- name: webhooks_page
SELECT id, org_id, url, events, secret, enabled, write_source, circuit_open_until, created_at,
       updated_at, count(*) OVER () AS total
FROM webhooks WHERE org_id = %(org_id)s
ORDER BY created_at, id
LIMIT %(limit)s OFFSET %(offset)s;

-- name: webhooks_count
SELECT count(*) AS total FROM webhooks WHERE org_id = %(org_id)s;

-- name: update_webhook
UPDATE webhooks
SET url = %(url)s, events = %(events)s, secret = %(secret)s, enabled = %(enabled)s,
    write_source = %(write_source)s, updated_at = now(),
    -- A new URL starts with a closed circuit.
    consecutive_failures = CASE WHEN url = %(url)s THEN consecutive_failures ELSE 0 END,
    circuit_open_until = CASE WHEN url = %(url)s THEN circuit_open_until END
WHERE org_id = %(org_id)s AND id = %(id)s;

-- name: delete_webhook
DELETE FROM webhooks WHERE org_id = %(org_id)s AND id = %(id)s;

-- name: emit_target
-- monitor.created / monitor.updated / monitor.deleted (before the rows go) for each given target
-- (with its own event id): one outbox row per enabled subscription of the target's org that
-- wants the event. A bulk operation is one statement.
INSERT INTO notifications (id, org_id, kind, webhook_id, event, event_id, subject_id, payload)
SELECT gen_random_uuid(), t.org_id, 'event', w.id, %(event)s, e.event_id, t.id,
       jsonb_build_object(
           'id', e.event_id, 'event', %(event)s::text,
           'timestamp', to_char(clock_timestamp() AT TIME ZONE 'UTC',
                                'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
           'monitor', jsonb_build_object(
               'id', t.id, 'name', t.name, 'type', t.kind,
               'target', coalesce(t.spec ->> 'url', t.spec ->> 'host', t.spec ->> 'domain', t.name),
               'enabled', t.enabled, 'tags', to_jsonb(t.tags)),
           'test', false)
FROM unnest(%(target_ids)s::uuid[], %(event_ids)s::uuid[]) AS e(target_id, event_id)
JOIN targets t ON t.id = e.target_id
JOIN webhooks w ON w.org_id = t.org_id AND w.enabled AND %(event)s = ANY(w.events);

-- name: emit_incident
-- monitor.down / monitor.up / incident.*: each incident and its target (each with its own event
-- id; the engine's chunk in one statement). ``only_unresolved``: nothing when a person resolved
-- it already (the engine's close after a manual resolve).
INSERT INTO notifications (id, org_id, kind, webhook_id, event, event_id, subject_id, payload)
SELECT gen_random_uuid(), i.org_id, 'event', w.id, %(event)s, e.event_id, t.id,
       jsonb_build_object(
           'id', e.event_id, 'event', %(event)s::text,
           'timestamp', to_char(clock_timestamp() AT TIME ZONE 'UTC',
                                'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
           'monitor', jsonb_build_object(
               'id', t.id, 'name', t.name, 'type', t.kind,
               'target', coalesce(t.spec ->> 'url', t.spec ->> 'host', t.spec ->> 'domain', t.name),
               'status', CASE WHEN i.ended_at IS NULL THEN i.status ELSE 'up' END),
           'incident', jsonb_build_object(
               'id', i.id, 'status', i.status, 'state', i.state,
               'started_at', i.started_at, 'ended_at', i.ended_at,
               'error_message', i.cause,
               'severity', coalesce(i.severity,
                                    CASE WHEN i.status = 'down' THEN 'critical' ELSE 'minor' END),
               'in_maintenance', i.in_maintenance,
               'acknowledged_at', i.acknowledged_at, 'resolved_at', i.resolved_at,
               'public_title', i.public_title),
           'test', false)
FROM unnest(%(incident_ids)s::uuid[], %(event_ids)s::uuid[]) AS e(incident_id, event_id)
JOIN incidents i ON i.id = e.incident_id
JOIN targets t ON t.id = i.target_id
JOIN webhooks w ON w.org_id = i.org_id AND w.enabled AND %(event)s = ANY(w.events)
WHERE NOT (%(only_unresolved)s AND i.resolved_by IS NOT NULL);

-- name: announce_maintenance
-- maintenance.started, then maintenance.ended, once each as the clock passes a window's start
-- and end; the flag and the events in one statement. The event id is derived from the window
-- (stable: every subscription gets the same one). ``cancelled``: only that window, which is being
-- deleted: once begun, it ends now (before its row goes).
-- One UPDATE sets both flags (two UPDATEs of one row in one statement: only one would happen,
-- and a window whose start and end both passed would wait a run for its end).
WITH due AS (
    SELECT id, org_id, title, starts_at, ends_at, all_targets,
           NOT started_announced AND starts_at <= now() AS start_now,
           NOT ended_announced
             AND CASE WHEN %(cancelled)s::uuid IS NULL THEN ends_at <= now()
                      ELSE starts_at <= now() END AS end_now
    FROM maintenance_windows
    WHERE (%(cancelled)s::uuid IS NULL OR id = %(cancelled)s::uuid)
      AND ((NOT started_announced AND starts_at <= now())
           OR (NOT ended_announced AND CASE WHEN %(cancelled)s::uuid IS NULL
                                            THEN ends_at <= now()
                                            ELSE starts_at <= now() END))
    FOR UPDATE
), flagged AS (
    UPDATE maintenance_windows m
    SET started_announced = m.started_announced OR d.start_now,
        ended_announced = m.ended_announced OR d.end_now
    FROM due d
    WHERE m.id = d.id
), changed AS (
    SELECT d.*, e.event, e.seq
    FROM due d
    CROSS JOIN LATERAL (VALUES ('maintenance.started', 0, d.start_now),
                               ('maintenance.ended', 1, d.end_now)) AS e(event, seq, fires)
    WHERE e.fires
)
INSERT INTO notifications (id, org_id, kind, webhook_id, event, event_id, subject_id, payload,
                           created_at)
SELECT gen_random_uuid(), m.org_id, 'event', w.id, m.event,
       md5(m.id::text || ':' || m.event)::uuid, m.id,
       jsonb_build_object(
           'id', md5(m.id::text || ':' || m.event)::uuid, 'event', m.event,
           'timestamp', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
           'maintenance', jsonb_build_object(
               'id', m.id, 'title', m.title, 'starts_at', m.starts_at, 'ends_at', m.ends_at,
               'all_targets', m.all_targets,
               'target_ids', coalesce((SELECT jsonb_agg(mt.target_id ORDER BY mt.target_id)
                                       FROM maintenance_targets mt WHERE mt.window_id = m.id),
                                      '[]'::jsonb)),
           'test', false),
       clock_timestamp() + make_interval(secs => m.seq * 0.001)
FROM changed m
JOIN webhooks w ON w.org_id = m.org_id AND w.enabled AND m.event = ANY(w.events)
ON CONFLICT (webhook_id, event_id) WHERE kind = 'event' DO NOTHING;

-- name: skip_disabled
-- Events of a subscription switched off are not sent.
UPDATE notifications n SET state = 'skipped', lease_until = NULL,
       last_error = 'webhook disabled'
FROM webhooks w
WHERE n.kind = 'event' AND n.state = 'pending' AND w.id = n.webhook_id AND NOT w.enabled
  AND (n.lease_until IS NULL OR n.lease_until < now());

-- name: claim_events
-- The oldest pending event of each (subscription, subject), when due: events of a subject go
-- in order, one after the other (a retried one holds back the later ones).
WITH heads AS (
    SELECT DISTINCT ON (n.webhook_id, n.subject_id) n.id, n.state, n.due_at, n.lease_until,
           n.webhook_id
    FROM notifications n
    WHERE n.kind = 'event' AND n.state = 'pending'
    ORDER BY n.webhook_id, n.subject_id, n.created_at, n.id
), due AS (
    SELECT n.id
    FROM heads h
    JOIN notifications n ON n.id = h.id
    JOIN webhooks w ON w.id = h.webhook_id
    WHERE h.due_at <= now() AND (h.lease_until IS NULL OR h.lease_until < now())
      AND w.enabled AND (w.circuit_open_until IS NULL OR w.circuit_open_until <= now())
    ORDER BY h.due_at
    LIMIT %(limit)s
    FOR UPDATE OF n SKIP LOCKED
)
UPDATE notifications n
SET lease_until = now() + make_interval(secs => %(lease_secs)s), attempts = n.attempts + 1
FROM due, webhooks w
WHERE n.id = due.id AND w.id = n.webhook_id
RETURNING n.id, n.org_id, n.webhook_id, n.event, n.event_id, n.payload, n.attempts,
          w.url, w.secret;

-- name: webhook_ok
UPDATE webhooks SET consecutive_failures = 0, circuit_open_until = NULL
WHERE id = %(id)s AND (consecutive_failures <> 0 OR circuit_open_until IS NOT NULL);

-- name: webhook_failed
UPDATE webhooks
SET consecutive_failures = consecutive_failures + 1,
    circuit_open_until = CASE WHEN consecutive_failures + 1 >= %(threshold)s
                              THEN now() + make_interval(secs => %(open_secs)s)
                              ELSE circuit_open_until END
WHERE id = %(id)s;

-- name: deliveries
-- A subscription's recent deliveries, newest first (GET /webhooks/{id}/deliveries).
SELECT n.id, n.event, n.event_id, n.state, n.attempts, n.created_at, n.delivered_at,
       n.last_error, count(*) OVER () AS total
FROM notifications n
JOIN webhooks w ON w.id = n.webhook_id AND w.org_id = %(org_id)s
WHERE n.kind = 'event' AND n.webhook_id = %(id)s
ORDER BY n.created_at DESC, n.id DESC
LIMIT %(limit)s OFFSET %(offset)s;

-- name: deliveries_count
SELECT count(*) AS total FROM notifications n
JOIN webhooks w ON w.id = n.webhook_id AND w.org_id = %(org_id)s
WHERE n.kind = 'event' AND n.webhook_id = %(id)s;
