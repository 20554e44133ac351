"""The recording copier's outcome in `make dev`'s log: one line per recording archived or not copied.

The handlers log through Powertools at POWERTOOLS_LOG_LEVEL (ERROR locally, to keep the console
to one line per request); the copier's outcome is worth a line of its own there, as the session
alone says why a recording failed. Only what the copier's line carries is printed: the vendor,
the session id, the reason or the archive key and size (no link, no transcript, no secret).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

ARCHIVED, NOT_COPIED = "recording archived", "recording not copied"  # the copier's messages (callvault/recordings.py)


class CopierOutcomes(logging.Handler):
    """Each of the copier's outcome records as one line, through `say`."""

    def __init__(self, say: Callable[[str], None]) -> None:
        super().__init__(logging.INFO)
        self._say = say

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message not in (ARCHIVED, NOT_COPIED):
            return
        # A stream worker's thread is named after its function (streams.py): `RecordingsArchiveFunction-0`.
        function = record.threadName.rsplit("-", 1)[0] if record.threadName else "recordings"
        fields = record.__dict__
        if message == NOT_COPIED:
            self._say(f"{function}: {NOT_COPIED} ({fields.get('vendor')} {fields.get('session_id')}): {fields.get('reason')}")
        else:
            self._say(f"{function}: {ARCHIVED}: {fields.get('key')} ({fields.get('bytes')} bytes)")


def show_copier_outcomes(say: Callable[[str], None]) -> Callable[[], None]:
    """Print the copier's outcomes through `say`, whatever POWERTOOLS_LOG_LEVEL keeps from the
    Powertools handler (which prints no more than before); returns what undoes it."""
    from callvault.observability import logger

    stdlib = logging.getLogger(logger.name)
    level, powertools_level = stdlib.level, logger.registered_handler.level
    handler = CopierOutcomes(say)
    if level > logging.INFO:
        logger.registered_handler.setLevel(level)  # Powertools' own output stays at its level
        stdlib.setLevel(logging.INFO)
    stdlib.addHandler(handler)

    def undo() -> None:
        stdlib.removeHandler(handler)
        stdlib.setLevel(level)
        logger.registered_handler.setLevel(powertools_level)

    return undo
