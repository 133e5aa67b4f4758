"""How fast the fake server answers: realistic by default, instant for fast tests.

The real server sends its first audio a few hundred milliseconds after a response starts and
then generates audio faster than it plays, so a client holds audio it has not played yet and a
barge-in lands while the server is still generating (docs/realtime-wire.md, "Timing of a
reply"). The time to first audio is not documented: it is a parameter.
"""

from __future__ import annotations

__all__ = ["DEFAULT_REPLY_PACE", "DEFAULT_TIME_TO_FIRST_AUDIO", "INSTANT"]

DEFAULT_TIME_TO_FIRST_AUDIO = 0.3  # seconds from response.created to the first output item
DEFAULT_REPLY_PACE = 1 / 3  # wall seconds per second of reply audio: three times real time

# the instant mode, for fast tests: FakeRealtimeServer(**INSTANT)
INSTANT: dict[str, float] = {"time_to_first_audio": 0.0, "reply_pace": 0.0}
