-- How calls ended, per vendor: the vendor's own end reason, most frequent first.
SELECT vendor, ended_reason, count(*) AS calls
FROM sessions
WHERE status = 'ended' AND day >= '2026-11-01'  -- the partition: only these days are read
GROUP BY vendor, ended_reason
ORDER BY calls DESC, vendor, ended_reason
