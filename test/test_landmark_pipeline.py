"""LandmarkPipeline without ROS: the real dlib tracker on driver-sized face photos."""

from __future__ import annotations

import threading

from face_frames import DRIVER_SCALE
import numpy as np
import pytest

from antispoof_ros.landmarks.dlib_backend import DlibBackend
from antispoof_ros.landmarks.pipeline import LandmarkPipeline, to_mono8
from antispoof_ros.landmarks.tracker import (
    FaceTracker,
    LandmarkResult,
    Method,
    Status,
    TrackerConfig,
)
from antispoof_ros.offline.landmark_training.samples import load_sample_faces, place_in_frame

CONFIG = TrackerConfig(redetect_every=3)
DETECTED, TRACKED = Method.DETECTED, Method.TRACKED


@pytest.fixture(scope='module')
def backend() -> DlibBackend:
    return DlibBackend()


@pytest.fixture(scope='module')
def frames() -> list[np.ndarray]:
    """Seven front frames of a driver-sized face moving a few pixels per frame."""
    face = next(f for f in load_sample_faces() if f.name == 'astronaut')
    rng = np.random.default_rng(0)
    return [place_in_frame(face, rng, scale=DRIVER_SCALE, centre=(960.0 + 3 * i, 600.0))[0]
            for i in range(7)]


class ThreadRecordingTracker(FaceTracker):
    """The real tracker, noting which thread ran each periodic detection."""

    def __init__(self, backend: DlibBackend) -> None:
        super().__init__(backend, CONFIG)
        self.refresh_threads: list[str] = []

    def refresh(self, frame: np.ndarray) -> LandmarkResult:
        self.refresh_threads.append(threading.current_thread().name)
        return super().refresh(frame)


def run(pipeline: LandmarkPipeline, frames: list[np.ndarray]) -> list[LandmarkResult]:
    """Answer every frame, then start the refresh it deferred, as the node does."""
    answers = []
    for frame in frames:
        answers.append(pipeline.answer(frame))
        pipeline.refresh_if_due()
    pipeline.finish_refresh()
    return answers


def test_inline_refresh_runs_after_each_answer_that_deferred_one(
    backend: DlibBackend, frames: list[np.ndarray]
) -> None:
    refreshes: list[LandmarkResult] = []
    tracker = ThreadRecordingTracker(backend)
    answers = run(LandmarkPipeline(tracker, on_refresh=refreshes.append), frames)
    assert [a.method for a in answers] == [DETECTED] + [TRACKED] * 6
    assert [r.method for r in refreshes] == [DETECTED] * 3  # after answers 3, 5 and 7
    assert set(tracker.refresh_threads) == {threading.current_thread().name}


def test_background_refresh_runs_on_the_worker_and_gives_the_same_corners(
    backend: DlibBackend, frames: list[np.ndarray]
) -> None:
    inline = run(LandmarkPipeline(FaceTracker(backend, CONFIG)), frames)
    refreshes: list[LandmarkResult] = []
    tracker = ThreadRecordingTracker(backend)
    pipeline = LandmarkPipeline(tracker, background=True, on_refresh=refreshes.append)
    try:
        background = run(pipeline, frames)
    finally:
        pipeline.close()
    assert [r.method for r in refreshes] == [DETECTED] * 3
    assert len(tracker.refresh_threads) == 3
    assert threading.current_thread().name not in tracker.refresh_threads
    assert all(name.startswith('periodic_detection') for name in tracker.refresh_threads)
    assert [a.corners for a in background] == [a.corners for a in inline]


def test_an_unreadable_frame_is_bad_input_and_the_track_goes_on(
    backend: DlibBackend, frames: list[np.ndarray]
) -> None:
    def unreadable() -> np.ndarray:
        raise ValueError("unsupported encoding 'yuv422'")

    refreshes: list[LandmarkResult] = []
    pipeline = LandmarkPipeline(FaceTracker(backend, CONFIG), on_refresh=refreshes.append)
    answers = run(pipeline, [frames[0], frames[1]])
    bad = pipeline.answer(unreadable)
    pipeline.refresh_if_due()
    assert bad.status is Status.BAD_INPUT and bad.reason == "unsupported encoding 'yuv422'"
    answers += run(pipeline, [frames[2]])
    assert [a.method for a in answers] == [DETECTED, TRACKED, TRACKED]
    assert [r.method for r in refreshes] == [DETECTED]  # due after the third good frame


def test_mono16_frames_are_scaled_by_their_bit_depth_before_tracking(
    backend: DlibBackend, frames: list[np.ndarray]
) -> None:
    mono8 = run(LandmarkPipeline(FaceTracker(backend, CONFIG)), frames[:2])
    mono12 = [frame.astype(np.uint16) << 4 for frame in frames[:2]]
    scaled = run(LandmarkPipeline(FaceTracker(backend, CONFIG), mono16_bits=12), mono12)
    assert [a.corners for a in scaled] == [a.corners for a in mono8]


def test_mono16_is_scaled_by_its_bit_depth_and_saturates() -> None:
    mono10 = np.array([[0, 2, 1020, 1023, 4095]], np.uint16)
    assert to_mono8(mono10, mono16_bits=10).tolist() == [[0, 0, 255, 255, 255]]
    assert to_mono8(mono10 << 6, mono16_bits=16).tolist() == [[0, 0, 255, 255, 255]]
    assert to_mono8(mono10, mono16_bits=12).tolist() == [[0, 0, 64, 64, 255]]
