"""The landmark protocol for a stream of frames of one phase, without ROS.

to 8 bit (``to_mono8``) -> ``FaceTracker.process(defer_refresh=True)``, which answers every
frame by tracking once a face is known -> after the answer is out, the periodic full
detection on that frame (``refresh_if_due``). The landmark node runs the detection on a
worker thread (dlib releases the GIL, so in a one-process pipeline the liveness node works
meanwhile; the next front frame is 33 ms away); offline tools run it inline. Either way the
tracker sees the same frames in the same order, so offline corners equal the node's.

mono16 frames (Mono10/Mono12 sensors) are scaled to 8 bit by the sensor's bit depth
(Mono12 -> divide by 16, rounded and saturated) rather than by each frame's maximum: a
fixed scale keeps the brightness of consecutive frames comparable and costs no pass over
the frame to find the maximum.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import cv2
import numpy as np

from antispoof_ros.landmarks.tracker import FaceTracker, LandmarkResult, Status

#: Pixels of one frame, or a callable returning them (raising ValueError if unreadable).
PixelSource = np.ndarray | Callable[[], np.ndarray]
DEFAULT_MONO16_BITS = 12


def to_mono8(pixels: np.ndarray, mono16_bits: int) -> np.ndarray:
    """Contiguous 8-bit frame for the tracker; mono16 is scaled by its bit depth.

    Other dtypes and shapes pass through: the tracker reports them as bad input.
    """
    if pixels.dtype == np.uint16:
        return cv2.convertScaleAbs(pixels, alpha=2.0 ** (8 - mono16_bits))
    return np.ascontiguousarray(pixels)


class LandmarkPipeline:
    """Answers each frame with eye corners; the periodic detection runs after the answer.

    Call ``answer`` for every frame in order, send the answer, then call
    ``refresh_if_due``. ``on_refresh`` receives each periodic detection's result (not an
    answer: its frame was answered already) once it has finished.
    """

    def __init__(self, tracker: FaceTracker, *, mono16_bits: int = DEFAULT_MONO16_BITS,
                 background: bool = False,
                 on_refresh: Callable[[LandmarkResult], None] | None = None) -> None:
        """Run periodic detections on a worker thread if ``background``, else inline."""
        self.tracker = tracker
        self.mono16_bits = mono16_bits
        self._on_refresh = on_refresh
        self._worker = (ThreadPoolExecutor(1, thread_name_prefix='periodic_detection')
                        if background else None)
        self._running: Future[LandmarkResult] | None = None
        self._due: np.ndarray | None = None  # the answered frame that wants a refresh

    def answer(self, pixels: PixelSource) -> LandmarkResult:
        """Eye corners of the next frame; an unreadable frame is a BAD_INPUT result."""
        self._due = None
        try:
            frame = to_mono8(pixels() if callable(pixels) else pixels, self.mono16_bits)
        except ValueError as error:
            return LandmarkResult(Status.BAD_INPUT, reason=str(error))
        self.finish_refresh()  # the tracker is not thread-safe
        result = self.tracker.process(frame, defer_refresh=True)
        if self.tracker.refresh_due:
            self._due = frame
        return result

    def refresh_if_due(self) -> None:
        """Start the periodic detection the last answer deferred, if it deferred one."""
        frame, self._due = self._due, None
        if frame is None:
            return
        if self._worker is None:
            self._finished(self.tracker.refresh(frame))
        else:
            self._running = self._worker.submit(self.tracker.refresh, frame)

    def finish_refresh(self) -> None:
        """Wait for a periodic detection still running on the worker."""
        if self._running is not None:
            running, self._running = self._running, None
            self._finished(running.result())

    def close(self) -> None:
        """Let a running periodic detection finish and stop the worker."""
        if self._worker is not None:
            self._worker.shutdown(wait=True)

    def _finished(self, result: LandmarkResult) -> None:
        if self._on_refresh is not None:
            self._on_refresh(result)
