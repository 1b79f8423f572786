"""Frames whose pixels tell which flash lit them: a stand-in for a real flash rig.

Used to feed pylon's emulated camera (an image folder it replays in alphabetical order)
so tests and benchmarks can check every published phase label against the pixels.
Besides a code block in the top-left corner, each frame has the coarse signature of its
flash (dark frame darkest, side flashes brighter on their side) for ``image_check``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from antispoof_ros.flash import DEFAULT_PATTERN, RIGHT_FLASH_IMAGE_SIDE, Phase
from antispoof_ros.offline.synthetic.emulator_folder import write_emulator_frames

CODE_SIZE = 32  # px, top-left square holding the phase code
_CODE_STEP = 50  # grey level per phase code: dark 50, front 100, right 150, left 200
_BRIGHTNESS = {Phase.DARK: 12.0, Phase.FRONT: 110.0, Phase.RIGHT: 90.0, Phase.LEFT: 90.0}
_SIDE_GAIN = 0.6  # side flashes: this much brighter on their side than on the other


def phase_coded_frame(phase: Phase, width: int, height: int, seed: int = 0) -> np.ndarray:
    """One uint8 frame with the phase code and the flash's brightness signature."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(-1.0, 1.0, width, dtype=np.float32)
    side = {Phase.RIGHT: RIGHT_FLASH_IMAGE_SIDE, Phase.LEFT: -RIGHT_FLASH_IMAGE_SIDE}.get(phase, 0)
    row = _BRIGHTNESS[phase] * (1.0 + _SIDE_GAIN * side * ramp / 2)
    frame = np.repeat(row[np.newaxis], height, axis=0)
    frame += rng.normal(0.0, 2.0, (height, width)).astype(np.float32)
    frame[:CODE_SIZE, :CODE_SIZE] = _CODE_STEP * (int(phase) + 1)
    return np.clip(frame, 0, 255).astype(np.uint8)


def decode_phase(pixels: np.ndarray) -> Phase:
    """Read the phase code of a frame made by ``phase_coded_frame``."""
    level = float(np.median(pixels[4 : CODE_SIZE - 4, 4 : CODE_SIZE - 4]))
    return Phase(int(round(level / _CODE_STEP)) - 1)


def write_phase_coded_folder(folder: Path, pattern: tuple[Phase, ...] = DEFAULT_PATTERN,
                             cycles: int = 2, width: int = 1920, height: int = 1200) -> list[Path]:
    """Write ``cycles`` flash cycles for pylon's emulated camera; the files in firing order."""
    phases = [pattern[index % len(pattern)] for index in range(cycles * len(pattern))]
    frames = ((phase, phase_coded_frame(phase, width, height, seed=index))
              for index, phase in enumerate(phases))
    return [folder / name for name in write_emulator_frames(folder, frames)]
