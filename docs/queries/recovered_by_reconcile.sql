-- Calls known only from the vendor's API: every stored event of theirs was pulled by reconcile
-- (the webhooks missed them).
SELECT s.vendor, s.session_id, s.status, min(e.received_at) AS first_pulled_at, count(*) AS pulled_events
FROM sessions AS s
JOIN events AS e ON e.vendor = s.vendor AND e.session_id = s.session_id
-- The partitions: a call's events come on or after its day, so both sides read only these days.
WHERE s.day >= '2026-11-01' AND e.day >= '2026-11-01'
GROUP BY s.vendor, s.session_id, s.status
HAVING count_if(e.source <> 'pull') = 0
ORDER BY s.vendor, s.session_id
