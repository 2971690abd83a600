"""Where keyframes go when runs of identical frames are written as cheap repeats.

Encoders count the pictures they are given, not the repeats written around them, so their
own keyframe interval would leave one keyframe for a whole static render. :class:`KeyframeClock`
counts output frames instead: a run crossing a 2-second boundary is split there, and the
picture is given to the encoder again as a forced keyframe, so every file is seekable (and
cuttable for HLS/DASH) at least every 2 s while repeats stay cheap inside each GOP.
"""

from __future__ import annotations

from collections.abc import Iterator

KEYFRAME_EVERY_SECONDS = 2


class KeyframeClock:
    """Splits runs of one picture at keyframe boundaries counted in output frames."""

    def __init__(self, fps: int, seconds: int = KEYFRAME_EVERY_SECONDS) -> None:
        self.gop = fps * seconds
        self.queued = 0  # output frames handed out so far
        self.last_key = 0  # output frame of the latest keyframe

    def split(self, count: int) -> Iterator[tuple[int, bool]]:
        """(frames, force a keyframe) pieces of a run of ``count`` frames of one picture.

        The first picture of a stream is a keyframe anyway, so it is not forced.
        """
        while count > 0:
            key = self.queued > 0 and self.queued - self.last_key >= self.gop
            if key:
                self.last_key = self.queued
            shown = min(count, self.last_key + self.gop - self.queued)
            self.queued += shown
            count -= shown
            yield shown, key
