-- Call duration percentiles per vendor and agent (ended calls whose vendor says the duration).
SELECT
  vendor,
  agent_id,
  count(*) AS calls,
  approx_percentile(duration_seconds, 0.5) AS p50_seconds,
  approx_percentile(duration_seconds, 0.9) AS p90_seconds,
  max(duration_seconds) AS max_seconds
FROM sessions
WHERE duration_seconds IS NOT NULL AND day >= '2026-11-01'  -- the partition: only these days are read
GROUP BY vendor, agent_id
ORDER BY vendor, agent_id
