"""Is every frame from the one camera? Its counters and exposure stamps must tell one story.

A camera stamps each frame with its exposure time from its own clock and numbers it with
its own counter, so on every camera topic the pair (counter, stamp) follows one line:
``stamp ~ offset + counter * frame period``. Frames that a second source (a replayed
recording, another camera) publishes onto the same topic carry counters and stamps of
another line, and interleaved with the camera's they break it. ``TickCheck`` finds such a
break (a tick discontinuity) per topic:

1. a counter again with another stamp, or a counter more than ``late_cycles`` flash cycles
   behind the newest (DDS delivers one writer's samples in order: a frame that far back is
   not the camera's); a slightly late frame must be stamped before the newest frame;
2. a newer counter whose stamp does not advance, or comes earlier than the counters allow:
   more than one frame period before the line through the earliest-stamped of the recent
   frames. The line uses half the frame period all frames show (``FramePeriodEstimator``, a
   median that lags when the rate changes): a camera stamped on arrival that catches up
   after its host slowed down delivers faster than the median says for a while, and a
   camera set to another rate is followed after a few frames. It also uses the
   earliest-stamped frame, because a camera that is stamped on arrival (pylon's emulator)
   stamps frames late, never early, by as much as its host stalls.

An exact duplicate (same counter, same stamp) and a pause (stamps advancing more than the
counters, as across a camera reconnect) are no break. After a break the topic follows the
new frame, so two sources that keep interleaving break the line again and again.

``SourceTrust`` turns problems (tick breaks, and the publisher problems the node sees on
the ROS graph) into a verdict: the source is untrusted from a problem until ``hold_s``
(0.5 s by default, at least the liveness node's fusion ``timeout_s``) has passed without one.
Frames that came in before a break was seen can still be injected ones; the liveness
node's decision window forgets pairs older than ``timeout_s``, so once the hold is over no
pair scored before the break is left to vote. No ROS import.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
import math

from antispoof_ros.liveness.pairing import FramePeriodEstimator

HOLD_S = 0.5
LATE_CYCLES = 2
RECENT_FRAMES = 8
NS_PER_MS = 1_000_000
# Frames may come up to 1 / RATE_TOLERANCE times as fast as the median period says.
RATE_TOLERANCE = 0.5


@dataclass
class _Stream:
    """The newest frame of one topic and its recent frames (counter, stamp in ns)."""

    newest: tuple[int, int]
    recent: deque[tuple[int, int]]


@dataclass
class TickCheck:
    """Finds tick discontinuities in the (frame counter, stamp) streams of the camera topics."""

    pattern_length: int = 4
    late_cycles: int = LATE_CYCLES
    recent_frames: int = RECENT_FRAMES
    discontinuities: int = field(default=0, init=False)
    _streams: dict[Hashable, _Stream] = field(default_factory=dict, init=False)
    _period: FramePeriodEstimator = field(default_factory=FramePeriodEstimator, init=False)

    def __post_init__(self) -> None:
        if self.pattern_length < 1 or self.late_cycles < 0 or self.recent_frames < 1:
            raise ValueError('pattern_length and recent_frames must be at least 1, '
                             'late_cycles at least 0')

    def add(self, stream: Hashable, counter: int, stamp_ns: int) -> str | None:
        """Note one frame of ``stream``; what breaks the camera's line (counted), else None."""
        state = self._streams.get(stream)
        problem = None if state is None else self._problem(state, counter, stamp_ns)
        # every frame informs the period, so a camera set to another rate is followed
        self._period.add(stream, counter, stamp_ns)
        if state is None or problem is not None:
            self._follow(stream, counter, stamp_ns)
        elif counter > state.newest[0]:
            state.newest = (counter, stamp_ns)
            state.recent.append(state.newest)
        if problem is None:
            return None
        self.discontinuities += 1
        return f'tick discontinuity on {stream}: {problem}'

    def _follow(self, stream: Hashable, counter: int, stamp_ns: int) -> None:
        """Start the line of ``stream`` afresh at this frame."""
        self._streams[stream] = _Stream((counter, stamp_ns),
                                        deque([(counter, stamp_ns)], maxlen=self.recent_frames))

    def _problem(self, state: _Stream, counter: int, stamp_ns: int) -> str | None:
        newest_counter, newest_stamp = state.newest
        apart_ms = (stamp_ns - newest_stamp) / NS_PER_MS
        if counter == newest_counter:
            return None if stamp_ns == newest_stamp else (
                f'frame {counter} again, stamped {apart_ms:+.1f} ms apart')
        if counter < newest_counter:
            if newest_counter - counter > self.late_cycles * self.pattern_length:
                return f'frame counter went back from {newest_counter} to {counter}'
            if stamp_ns >= newest_stamp:
                return f'frame {counter} stamped {apart_ms:+.1f} ms after frame {newest_counter}'
            return None
        if stamp_ns <= newest_stamp:
            return (f'frame {counter} stamped {apart_ms:+.1f} ms from the older frame '
                    f'{newest_counter}')
        period_ns = self._period.period_ns
        if period_ns is None:
            return None
        fastest_ns = RATE_TOLERANCE * period_ns
        earliest_ns = min(s + (counter - c) * fastest_ns for c, s in state.recent) - period_ns
        if stamp_ns < earliest_ns:
            return (f'frame {counter} stamped {(earliest_ns - stamp_ns) / NS_PER_MS:.1f} ms '
                    f'earlier than its counter allows at {fastest_ns / NS_PER_MS:.2f} ms '
                    'per frame')
        return None


@dataclass
class SourceTrust:
    """Untrusted from a problem until ``hold_s`` passed without one (see module docstring)."""

    hold_s: float = HOLD_S
    #: How often the source went from trusted to untrusted.
    onsets: int = field(default=0, init=False)
    _problem: str = field(default='', init=False)
    _last_s: float = field(default=-math.inf, init=False)

    def __post_init__(self) -> None:
        if not self.hold_s > 0:
            raise ValueError(f'hold_s must be positive, not {self.hold_s}')

    def report(self, problem: str, now_s: float) -> bool:
        """A problem seen at ``now_s``; True when it makes a trusted source untrusted."""
        onset = self.problem(now_s) is None
        self.onsets += onset
        self._problem, self._last_s = problem, max(now_s, self._last_s)
        return onset

    def problem(self, now_s: float) -> str | None:
        """The latest problem while it holds, else None (trusted)."""
        return self._problem if now_s - self._last_s < self.hold_s else None
