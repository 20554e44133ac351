-- Calls, minutes and cost per vendor and agent per day (the day the call was created, else started).
SELECT
  vendor,
  agent_id,
  CAST(coalesce(created_at, started_at, listed_at) AS date) AS call_day,
  count(*) AS calls,
  round(sum(duration_seconds) / 60, 2) AS minutes,
  round(sum(cost_usd), 4) AS cost_usd
FROM sessions
GROUP BY 1, 2, 3
ORDER BY call_day DESC, vendor, agent_id
