"""The sample sessions' recording, served by the local stack itself.

The sample payloads in `events/payloads/` link their recordings to `SAMPLE_AUDIO_PATH` on the
local stack (`http://127.0.0.1:3000/local/sample-audio/...`), so a newcomer's first session ends
with an archived recording instead of a copy that fails against a vendor host it cannot reach.
`make dev` answers any file under that path with `sample_wav()`; `callvault send` points such a
link at the port of the stack it sends to (`pointed_at`), so the samples work on any PORT.
"""

from __future__ import annotations

import io
import math
import re
import struct
import wave
from functools import cache

SAMPLE_AUDIO_PATH = "/local/sample-audio/"
# A sample-audio link on the local stack, whichever port it names: what `pointed_at` rewrites.
_SAMPLE_LINK = re.compile(rb"http://127\.0\.0\.1:\d+" + re.escape(SAMPLE_AUDIO_PATH.encode()))


def make_wav(seconds: float, rate: int = 8000, tones: tuple[float, ...] = (440.0,)) -> bytes:
    """A real WAV file (16-bit mono PCM): the `tones` in turn, each an equal share of `seconds`."""
    frames = int(seconds * rate)
    share = max(1, math.ceil(frames / len(tones)))
    samples = (
        struct.pack("<h", int(12000 * math.sin(2 * math.pi * tones[min(n // share, len(tones) - 1)] * n / rate)))
        for n in range(frames)
    )
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(b"".join(samples))
    return out.getvalue()


# As long as the longest sample call (Retell's, 74.5 s), so that every turn of every sample's
# transcript has audio to seek to.
SAMPLE_SECONDS = 75


@cache
def sample_wav() -> bytes:
    """The sample recording: a rising three-note chime, a note a second (about 1.2 MB)."""
    return make_wav(float(SAMPLE_SECONDS), tones=(523.25, 659.25, 783.99) * (SAMPLE_SECONDS // 3))


def reply(method: str, path: str) -> tuple[int, dict[str, str], bytes] | None:
    """The local stack's answer to a request for sample audio (status, headers, body), or None
    when `path` is not under SAMPLE_AUDIO_PATH (a route of the template, then)."""
    if not path.startswith(SAMPLE_AUDIO_PATH):
        return None
    if method not in ("GET", "HEAD"):
        return 405, {"content-type": "application/json", "allow": "GET, HEAD"}, b'{"message":"Method Not Allowed"}'
    return 200, {"content-type": "audio/wav", "cache-control": "no-store"}, sample_wav()


def pointed_at(body: bytes, port: int) -> bytes:
    """`body` with every sample-audio link naming the local stack on `port`."""
    return _SAMPLE_LINK.sub(f"http://127.0.0.1:{port}{SAMPLE_AUDIO_PATH}".encode(), body)
