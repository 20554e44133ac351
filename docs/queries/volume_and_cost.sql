-- Calls, minutes and cost per vendor and agent per day (the call's day: created, else started,
-- else first heard of). `day` is the partition: Athena reads only the days asked for.
SELECT
  vendor,
  agent_id,
  day AS call_day,
  count(*) AS calls,
  round(sum(duration_seconds) / 60, 2) AS minutes,
  round(sum(cost_usd), 4) AS cost_usd
FROM sessions
WHERE day >= '2026-11-01'
GROUP BY 1, 2, 3
ORDER BY call_day DESC, vendor, agent_id
