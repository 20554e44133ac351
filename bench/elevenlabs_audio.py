"""How large ElevenLabs `post_call_audio` bodies get, and which limit cuts them.

    make bench      (or: uv run python -m bench.elevenlabs_audio)

The body is `{"type": "post_call_audio", "event_timestamp", "data": {"agent_id", "conversation_id",
"full_audio": <base64 MP3>}}`. ElevenLabs does not publish the bitrate of that MP3 (neither its
docs nor its SDK say); 128 kbit/s is its default MP3 output (`mp3_44100_128`) and is the assumed
figure, with 64 and 32 kbit/s beside it. Each body is built for real (MP3-sized bytes, base64,
JSON) and measured, then set against the limits in its way: callvault's own 413 limit
(config.LAMBDA_BODY_LIMIT), Lambda's 6 MB synchronous payload and API Gateway's 10 MB.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers/callvault")]

from callvault.config import LAMBDA_BODY_LIMIT  # noqa: E402

MINUTES = (5, 15, 30)
BITRATES_KBPS = (128, 64, 32)
# In the order a request meets them: API Gateway, then Lambda's invoke, then callvault's handler.
LIMITS = (
    ("API Gateway (10 MB)", 10 * 1024 * 1024),
    ("Lambda invoke (6 MB)", 6 * 1024 * 1024),
    ("callvault 413", LAMBDA_BODY_LIMIT),
)


def body_bytes(minutes: int, kbps: int) -> int:
    audio = os.urandom(kbps * 1000 // 8 * minutes * 60)
    data = {"agent_id": "agent_7f2b9c1d4e", "conversation_id": "conv_01jx9z3k7m2q8r5t4v6w8y0a1b"}
    body = {
        "type": "post_call_audio",
        "event_timestamp": 1795425470,
        "data": {**data, "full_audio": base64.b64encode(audio).decode()},
    }
    return len(json.dumps(body).encode())


def main() -> None:
    print("post_call_audio body size (MB = 2^20 bytes); where the request is refused, if it is")
    print(f"{'call':>6} {'kbit/s':>7} {'body MB':>8}  refused by")
    for kbps in BITRATES_KBPS:
        for minutes in MINUTES:
            size = body_bytes(minutes, kbps)
            cut = next((name for name, limit in LIMITS if size > limit), "nothing: stored")
            print(f"{minutes:>4} m {kbps:>7} {size / 2**20:>8.2f}  {cut}")
    for kbps in BITRATES_KBPS:
        seconds = LAMBDA_BODY_LIMIT * 3 / 4 / (kbps * 1000 / 8)
        print(f"longest call stored at {kbps} kbit/s: {seconds / 60:.1f} minutes")


if __name__ == "__main__":
    main()
