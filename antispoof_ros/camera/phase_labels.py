"""Flash-phase labels for camera frames, derived from the camera's own frame counter.

Labels come from counters, never from arrival order, so a lost frame leaves a gap in the
counters instead of shifting the labels of the frames after it. ``MonotonicCounter`` keeps
the counters increasing across a GigE BlockID wrap and a camera restart. ``PhaseTracker``
(phase source ``image_check``) checks every frame's label against the frame's image
statistics and marks a label verified only while the images confirm it; after a desync
(a dropped trigger, a controller reset) it finds the new offset from the images.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from antispoof_ros.flash import DEFAULT_PATTERN, RIGHT_FLASH_IMAGE_SIDE, Phase

# GigE Vision block ids are 16 bit: after 65535 the camera continues at 1 (0 marks only the
# first block of a stream).
GIGE_BLOCK_ID_MAX = 65535
# A step back from within this many frames of the 16-bit top to within this many frames of
# its bottom is a wrap; any other step back is a camera restart. 1200 frames: 10 s at 120 Hz.
DEFAULT_WRAP_WINDOW = 1200


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


class MonotonicCounter:
    """Raw camera frame counters turned into one counter that only increases.

    Everything downstream (phase labels, pairing by consecutive counters, bag order) relies
    on the published frame counter increasing by one per exposure. Raw counters do not: a
    GigE camera's 16-bit BlockID wraps from 65535 to 1, which taken as is shifts every label
    after the wrap by one, and a restarted camera counts from 0 again. A step back from the
    top ``wrap_window`` frames of the 16-bit range to its bottom ``wrap_window`` frames is a
    wrap and continues by the frames it skipped; any other step back (or ``start_stream``)
    is a restart: counting continues at the next multiple of ``modulus`` above the last
    counter, so a restart shows as a gap and (counter mod ``modulus``) equals the raw
    counter's, as it does for a camera that was never restarted.
    """

    def __init__(self, modulus: int = 1, wrap_window: int = DEFAULT_WRAP_WINDOW) -> None:
        if modulus < 1 or not 0 < wrap_window < GIGE_BLOCK_ID_MAX // 2:
            raise ValueError('modulus must be positive and wrap_window within the 16-bit range')
        self.modulus = modulus
        self.wrap_window = wrap_window
        self.skipped_frames = 0
        self.wraps = 0
        self.restarts = 0
        self._base = 0
        self._last_raw: int | None = None
        self._last_counter: int | None = None

    def start_stream(self) -> None:
        """Call after (re)starting acquisition: raw counters begin again near 0."""
        if self._last_counter is not None:
            self._base = (self._last_counter // self.modulus + 1) * self.modulus
        self._last_raw = None

    def __call__(self, raw_counter: int) -> int:
        """Monotonic counter for a raw camera counter; counts skipped frames, wraps, restarts."""
        last = self._last_raw
        if last is not None and raw_counter < last:
            if self._is_wrap(last, raw_counter):
                # a counter that does count 0 again wraps after 65536 frames
                period = GIGE_BLOCK_ID_MAX + (raw_counter == 0)
                self.wraps += 1
                self._base += period
                self.skipped_frames += period - last + raw_counter - 1
            else:
                self.restarts += 1
                self.start_stream()
        elif last is not None and raw_counter > last + 1:
            self.skipped_frames += raw_counter - last - 1
        self._last_raw = raw_counter
        self._last_counter = self._base + raw_counter
        return self._last_counter

    def _is_wrap(self, last_raw: int, raw_counter: int) -> bool:
        return (GIGE_BLOCK_ID_MAX - self.wrap_window < last_raw <= GIGE_BLOCK_ID_MAX
                and raw_counter <= self.wrap_window)


class FrameCounterLabeler:
    """Phase = pattern[(counter + offset) mod N], with counters from a ``MonotonicCounter``.

    Such a label is an assumption (the flash controller counts in lockstep with the camera),
    not a checked fact: it is published unverified unless a check confirmed it.
    """

    def __init__(self, pattern: tuple[Phase, ...], offset: int = 0) -> None:
        self.pattern = pattern
        self.offset = offset % len(pattern)
        self.counters = MonotonicCounter(len(pattern))

    @property
    def skipped_frames(self) -> int:
        """Frames the camera counted but never delivered (gaps in the raw counters)."""
        return self.counters.skipped_frames

    def start_stream(self) -> None:
        """Call after (re)starting acquisition: raw counters begin again near 0."""
        self.counters.start_stream()

    def counter(self, raw_counter: int) -> int:
        """Monotonic frame counter for a raw camera counter; counts skipped frames."""
        return self.counters(raw_counter)

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


FrameStatistics = tuple[float, float]  # (mean brightness, asymmetry)


def frame_statistics(pixels: np.ndarray, stride: int = 8) -> FrameStatistics:
    """Mean brightness and right-minus-left asymmetry of a frame, on a sparse grid.

    The asymmetry is normalised by the mean so it does not depend on exposure.
    """
    grid = pixels[::stride, ::stride].astype(np.float32)
    mean = float(grid.mean())
    half = grid.shape[1] // 2
    asymmetry = float(grid[:, -half:].mean() - grid[:, :half].mean()) / max(mean, 1e-3)
    return mean, asymmetry


def check_image_check_pattern(pattern: tuple[Phase, ...]) -> None:
    """Raise ValueError unless image statistics can tell every phase of ``pattern`` apart.

    The dark frame is told by its brightness, the side flashes by their asymmetry, and a
    front frame by lying between the side flashes; two lit phases without both side
    flashes look alike.
    """
    if Phase.DARK not in pattern and not {Phase.RIGHT, Phase.LEFT} <= set(pattern):
        raise ValueError('image_check needs a dark phase or both side flashes in the pattern')
    lit = [phase for phase in pattern if phase != Phase.DARK]
    if len(lit) > 1 and not {Phase.RIGHT, Phase.LEFT} <= set(lit):
        raise ValueError(f'image_check cannot tell {lit[0].label} from {lit[1].label} frames: '
                         'the pattern needs both side flashes or a single lit phase')


class PhaseTracker:
    """Frame-counter labels checked frame by frame against the flash signature in the images.

    Every frame is checked together with the N - 1 frames before it (one flash cycle of
    consecutive counters, so the scene has hardly changed): under the current offset the
    dark frame must be darker than ``dark_ratio`` times every lit frame; on the side-flash
    axis (right-minus-left asymmetry) the right frame must lie at least
    ``min_side_contrast`` to the right flash's side of the left frame; without a dark phase,
    a front frame must lie in the middle quarter between them. (With a dark phase that rule
    adds nothing, and it fails on a face that turns between two cycles: the window holds
    the side flashes of the cycle before.) A label is verified only when its window fits
    the current offset and no other. The first frame after a desync (a dropped trigger, a
    controller reset) puts a frame with the wrong signature into the window: it and the
    frames after it are published unverified, so no pair that spans the desync is scored,
    until the window holds only frames of the new offset; that offset is then the one fit
    and becomes the current one, one flash cycle after the desync when the images are clear.
    A window with a lost frame checks nothing (its frames stay unverified).
    """

    def __init__(self, labeler: FrameCounterLabeler, dark_ratio: float = 0.7,
                 min_side_contrast: float = 0.02,
                 on_correction: Callable[[int, int], None] | None = None) -> None:
        check_image_check_pattern(labeler.pattern)
        self.labeler = labeler
        self.pattern = labeler.pattern
        self.dark_ratio = dark_ratio
        self.min_side_contrast = min_side_contrast
        self.on_correction = on_correction
        self.verified = False
        self.contradictions = 0  # verified stretches ended by a window that did not fit
        self.corrections = 0  # times the images changed the offset
        self._window: deque[tuple[int, FrameStatistics]] = deque(maxlen=len(self.pattern))

    def reset(self) -> None:
        """Forget the image evidence (after a reconnect the flashes may have restarted)."""
        self.verified = False
        self._window.clear()

    def label(self, counter: int, pixels: np.ndarray) -> PhaseLabel:
        """Label of the frame with this (monotonic) counter, verified if the images agree."""
        self._window.append((counter, frame_statistics(pixels)))
        fitting = self._fitting_offsets()
        was_verified, self.verified = self.verified, len(fitting) == 1
        if was_verified and fitting != [self.labeler.offset]:
            self.contradictions += 1
        if self.verified and fitting[0] != self.labeler.offset:
            old_offset, self.labeler.offset = self.labeler.offset, fitting[0]
            self.corrections += 1
            if self.on_correction is not None:
                self.on_correction(old_offset, self.labeler.offset)
        return self.labeler.label(counter, PhaseSource.IMAGE_CHECK, self.verified)

    def _fitting_offsets(self) -> list[int]:
        n = len(self.pattern)
        first, last = self._window[0][0], self._window[-1][0]
        if len(self._window) < n or last - first != n - 1:
            return []
        return [offset for offset in range(n) if self._fits(offset)]

    def _fits(self, offset: int) -> bool:
        n = len(self.pattern)
        window = {self.pattern[(counter + offset) % n]: stats for counter, stats in self._window}
        if Phase.DARK in window:
            dark = window[Phase.DARK][0]
            if any(dark >= self.dark_ratio * mean
                   for phase, (mean, _) in window.items() if phase != Phase.DARK):
                return False
        if not {Phase.RIGHT, Phase.LEFT} <= window.keys():
            return True
        # on this axis right-flash frames are high, left-flash frames low
        right = RIGHT_FLASH_IMAGE_SIDE * window[Phase.RIGHT][1]
        left = RIGHT_FLASH_IMAGE_SIDE * window[Phase.LEFT][1]
        if right - left < self.min_side_contrast:
            return False
        if Phase.FRONT not in window or Phase.DARK in window:
            return True  # the dark frame already tells the offset; the sides its direction
        front = RIGHT_FLASH_IMAGE_SIDE * window[Phase.FRONT][1]
        return abs(front - (right + left) / 2) < (right - left) / 4
