-- Calls whose recording could not be archived (README "Recordings"): which, and when they ended.
SELECT vendor, session_id, ended_at, recording_state
FROM sessions
WHERE recording_state = 'failed' AND day >= '2026-11-01'  -- the partition: only these days are read
ORDER BY ended_at DESC, vendor, session_id
