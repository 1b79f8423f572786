"""Emulator image folders showing a real face photo in every flash phase."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from antispoof_ros.eye_corners import EyeCornerPoints
from antispoof_ros.flash import DEFAULT_PATTERN
from antispoof_ros.offline.landmark_training.samples import FRAME_SHAPE, SampleFace, place_in_frame
from antispoof_ros.offline.synthetic.phase_coded_images import phase_coded_frame

DRIVER_SCALE = 4.0  # photo scale giving a driver-sized face (~360 px) for the default settings


def write_face_cycle(folder: Path, face: SampleFace) -> EyeCornerPoints:
    """One flash cycle of BMPs (dark, front, right, left) showing ``face``; its corners."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index, phase in enumerate(DEFAULT_PATTERN):
        background = phase_coded_frame(phase, FRAME_SHAPE[1], FRAME_SHAPE[0], seed=index)
        pixels, truth = place_in_frame(face, rng, scale=DRIVER_SCALE, frame=background)
        assert cv2.imwrite(str(folder / f'{index:06d}_{phase.label}.bmp'), pixels)
    return truth
