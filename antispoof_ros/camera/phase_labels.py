"""Flash-phase labels for camera frames, derived from the camera's own frame counter.

Labels come from counters, never from arrival order, so a lost frame leaves a gap in the
counters instead of shifting the labels of the frames after it. ``ImagePhaseCheck`` can
verify the labels against image statistics (the dark frame is the darkest of a cycle; the
side flashes shade the face asymmetrically) and correct a wrong offset.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from antispoof_ros.flash import DEFAULT_PATTERN, RIGHT_FLASH_IMAGE_SIDE, Phase


class PhaseSource(IntEnum):
    """How a phase was determined; values equal FlashFrame.SOURCE_*."""

    SEQUENCER = 0
    FRAME_COUNTER = 1
    IMAGE_CHECK = 2


@dataclass(frozen=True)
class PhaseLabel:
    """Everything the camera node stamps on a frame besides the pixels."""

    phase: Phase
    frame_counter: int
    cycle_index: int
    position_in_cycle: int
    source: PhaseSource
    verified: bool


class FrameCounterLabeler:
    """Phase = pattern[(counter + offset) mod N], with counters monotonic across reconnects.

    A camera restarts its frame counter at 0 after a reconnect; the labeler then adds a
    multiple of the pattern length, so published counters keep increasing, a reconnect
    shows as a gap, and (counter mod N) is unchanged by the re-basing.
    """

    def __init__(self, pattern: tuple[Phase, ...], offset: int = 0) -> None:
        self.pattern = pattern
        self.offset = offset % len(pattern)
        self.skipped_frames = 0
        self._base = 0
        self._last_raw: int | None = None
        self._last_counter: int | None = None

    def start_stream(self) -> None:
        """Call after (re)starting acquisition: raw counters begin again near 0."""
        if self._last_counter is not None:
            n = len(self.pattern)
            self._base = (self._last_counter // n + 1) * n
        self._last_raw = None

    def counter(self, raw_counter: int) -> int:
        """Monotonic frame counter for a raw camera counter; counts skipped frames."""
        if self._last_raw is not None and raw_counter > self._last_raw + 1:
            self.skipped_frames += raw_counter - self._last_raw - 1
        self._last_raw = raw_counter
        self._last_counter = self._base + raw_counter
        return self._last_counter

    def label(self, counter: int, source: PhaseSource = PhaseSource.FRAME_COUNTER,
              verified: bool = False) -> PhaseLabel:
        """Label the frame with this (monotonic) counter."""
        return counter_label(counter, self.pattern, self.offset, source, verified)


def counter_label(counter: int, pattern: tuple[Phase, ...] = DEFAULT_PATTERN, offset: int = 0,
                  source: PhaseSource = PhaseSource.FRAME_COUNTER,
                  verified: bool = False) -> PhaseLabel:
    """Phase, cycle and position of the frame with ``counter``: pattern[(counter + offset) % N].

    The one place where a frame counter becomes a phase label (camera, bags, tools, tests).
    """
    n = len(pattern)
    position = (counter + offset) % n
    return PhaseLabel(
        phase=pattern[position],
        frame_counter=counter,
        cycle_index=(counter + offset) // n,
        position_in_cycle=position,
        source=source,
        verified=verified,
    )


def frame_statistics(pixels: np.ndarray, stride: int = 8) -> tuple[float, float]:
    """Mean brightness and right-minus-left asymmetry of a frame, on a sparse grid.

    The asymmetry is normalised by the mean so it does not depend on exposure.
    """
    grid = pixels[::stride, ::stride].astype(np.float32)
    mean = float(grid.mean())
    half = grid.shape[1] // 2
    asymmetry = float(grid[:, -half:].mean() - grid[:, :half].mean()) / max(mean, 1e-3)
    return mean, asymmetry


class ImagePhaseCheck:
    """Checks whole cycles of frames against the expected flash signature.

    With a dark phase in the pattern the darkest frame of a cycle fixes the offset: the
    flashes add light to every other frame, whatever the ambient light (it must be darker
    than ``dark_ratio`` times the next darkest frame, else the cycle is undecided: no face,
    flashes off). Without one, the side flashes decide: the right flash brightens its side
    of the image, the left flash the other (``RIGHT_FLASH_IMAGE_SIDE``); the best offset must
    beat the runner-up by ``margin`` (in units of the cycle's own spread of asymmetries).
    """

    def __init__(self, pattern: tuple[Phase, ...], dark_ratio: float = 0.7,
                 margin: float = 1.0) -> None:
        if Phase.DARK not in pattern and not {Phase.RIGHT, Phase.LEFT} <= set(pattern):
            raise ValueError('image_check needs a dark phase or both side flashes in the pattern')
        self.pattern = pattern
        self.dark_ratio = dark_ratio
        self.margin = margin
        self._cycle: dict[int, tuple[float, float]] = {}
        self._cycle_start: int | None = None

    def add(self, counter: int, pixels: np.ndarray) -> int | None:
        """Add one frame; return the offset implied by a complete, decided cycle, else None.

        Cycles are the runs of N consecutive counters starting at multiples of N; a cycle
        with a missing frame is discarded.
        """
        n = len(self.pattern)
        start = counter - counter % n
        if start != self._cycle_start:
            self._cycle, self._cycle_start = {}, start
        self._cycle[counter % n] = frame_statistics(pixels)
        if len(self._cycle) < n:
            return None
        stats = np.array([self._cycle[i] for i in range(n)])
        self._cycle = {}
        if Phase.DARK in self.pattern:
            return self._offset_from_dark_frame(stats[:, 0])
        return self._offset_from_side_flashes(stats[:, 1])

    def _offset_from_dark_frame(self, brightness: np.ndarray) -> int | None:
        order = np.argsort(brightness)
        if brightness[order[0]] > self.dark_ratio * brightness[order[1]]:
            return None
        # frame i of the cycle has counter start + i with start % n == 0
        return int((self.pattern.index(Phase.DARK) - order[0]) % len(self.pattern))

    def _offset_from_side_flashes(self, asymmetry: np.ndarray) -> int | None:
        n = len(self.pattern)
        a = (asymmetry - asymmetry.mean()) / max(float(asymmetry.std()), 1e-6)
        scores = []
        for offset in range(n):
            phases = [self.pattern[(i + offset) % n] for i in range(n)]
            scores.append(RIGHT_FLASH_IMAGE_SIDE * (a[phases.index(Phase.RIGHT)]
                                                    - a[phases.index(Phase.LEFT)]))
        order = np.argsort(scores)[::-1]
        if n > 1 and scores[order[0]] - scores[order[1]] < self.margin:
            return None
        return int(order[0])
