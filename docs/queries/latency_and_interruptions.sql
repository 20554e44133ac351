-- Turn latency, interruptions and talk share per vendor and agent (ended calls; each metric null where the vendor does not say it).
SELECT
  vendor,
  agent_id,
  count(*) AS calls,
  approx_percentile(latency_p50_ms, 0.5) AS median_latency_ms,
  max(latency_p90_ms) AS worst_p90_latency_ms,
  avg(interruptions) AS interruptions_per_call,
  sum(agent_talk_seconds) / nullif(sum(agent_talk_seconds) + sum(customer_talk_seconds), 0) AS agent_talk_share
FROM sessions
WHERE status = 'ended' AND day >= '2026-11-01'  -- the partition: only these days are read
GROUP BY vendor, agent_id
ORDER BY vendor, agent_id
