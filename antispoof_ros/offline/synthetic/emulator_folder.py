"""Image folders for pylon's emulated camera: frames in firing order, one file each.

The emulator replays a folder's files in alphabetical order, cyclically, so every writer of
such a folder names its frames ``NNNNNN_<phase>.<suffix>`` with one running number: the
alphabetical order is the firing order, and the phase in the name is for the reader.
BMP is the default: the emulator sustains ~82 frames/s from BMP, 52-65 from PNG.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from antispoof_ros.flash import Phase

BMP = '.bmp'


def frame_file_name(number: int, phase: Phase, suffix: str = BMP) -> str:
    """File name of frame ``number`` (its firing position) lit by ``phase``."""
    return f'{number:06d}_{phase.label}{suffix}'


def write_emulator_frames(folder: Path, frames: Iterable[tuple[Phase, np.ndarray]],
                          first_number: int = 0, suffix: str = BMP) -> list[str]:
    """Write ``(phase, image)`` frames in firing order from ``first_number``; their file names.

    Creates ``folder`` if needed. OSError naming the file when one cannot be written.
    """
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for number, (phase, image) in enumerate(frames, start=first_number):
        name = frame_file_name(number, phase, suffix)
        if not cv2.imwrite(str(folder / name), image):
            raise OSError(f'cannot write {folder / name}')
        names.append(name)
    return names
