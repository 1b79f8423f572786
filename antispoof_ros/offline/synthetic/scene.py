"""Scenario specifications and per-frame ground truth of the synthetic NIR scenes.

A *scenario* mirrors one recording of the thesis protocol (3.2): who or what is in front of
the camera, under which ambient light and head pose. Rendering a scenario yields flash
*cycles* of four frames (dark, front, right, left) together with their ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from antispoof_ros.eye_corners import EyeCornerPoints
from antispoof_ros.flash import Phase


class _Named(Enum):
    """Enum whose lower-case value is used on the command line and in manifests."""

    @classmethod
    def parse(cls, name: str) -> '_Named':
        """Parse a value such as ``'print'``; the error lists the known values."""
        try:
            return cls(name.strip().lower())
        except ValueError:
            known = ', '.join(m.value for m in cls)
            raise ValueError(f"unknown {cls.__name__.lower()} '{name}' (known: {known})") from None

    @property
    def code(self) -> int:
        """Small integer stored in the npz shards (index in declaration order)."""
        return list(type(self)).index(self)


class Species(_Named):
    """What is presented to the camera (live face or presentation-attack instrument)."""

    LIVE = 'live'
    PRINT = 'print'
    MASK = 'mask'
    REPLAY = 'replay'


class PrintKind(_Named):
    """Source and ink of a print attack (thesis 3.2.2.1): inks differ in NIR reflectance."""

    NIR = 'nir'
    BW = 'bw'
    COLOUR = 'colour'


class Lighting(_Named):
    """Ambient NIR condition of a recording (thesis 3.2.1)."""

    OFFICE = 'office'
    DARK = 'dark'
    HALOGEN = 'halogen'


class Pose(_Named):
    """Where the subject looks (thesis 3.2.1): ahead, 45 deg right/left, into the camera."""

    AHEAD = 'ahead'
    RIGHT45 = 'right45'
    LEFT45 = 'left45'
    CAMERA = 'camera'


class Split(_Named):
    """Dataset split; subjects and masks never appear in two splits."""

    TRAIN = 'train'
    VALIDATION = 'validation'
    TEST = 'test'


@dataclass(frozen=True)
class ScenarioSpec:
    """One synthetic recording: species, who/what, light, pose and how many cycles."""

    scenario_id: str
    species: Species
    lighting: Lighting
    pose: Pose | None
    n_cycles: int
    subject_id: int | None = None
    mask_id: int | None = None
    print_kind: PrintKind | None = None
    split: Split = Split.TRAIN

    def __post_init__(self) -> None:
        if self.n_cycles < 0:
            raise ValueError(f'{self.scenario_id}: negative number of cycles {self.n_cycles}')
        if self.subject_id is None:
            raise ValueError(f'{self.scenario_id}: every scenario shows (or is worn by) a subject')
        if self.species is Species.MASK and self.mask_id is None:
            raise ValueError(f'{self.scenario_id}: a mask scenario needs a mask_id')
        if self.species is Species.PRINT and self.print_kind is None:
            raise ValueError(f'{self.scenario_id}: a print scenario needs a print_kind')

    @property
    def is_live(self) -> bool:
        """Label of the classifier: only bare live faces are genuine."""
        return self.species is Species.LIVE

    def as_dict(self) -> dict:
        """JSON-friendly metadata (enum values as strings)."""
        return {
            'scenario_id': self.scenario_id,
            'species': self.species.value,
            'lighting': self.lighting.value,
            'pose': None if self.pose is None else self.pose.value,
            'n_cycles': self.n_cycles,
            'subject_id': self.subject_id,
            'mask_id': self.mask_id,
            'print_kind': None if self.print_kind is None else self.print_kind.value,
            'split': self.split.value,
            'label': int(self.is_live),
        }


@dataclass(frozen=True)
class RenderMode:
    """Output geometry: the full sensor, or a scaled region of interest around the face.

    ``scale`` < 1 renders as if with a proportionally smaller sensor (coarser pixels);
    ground-truth coordinates are given in the pixels of the rendered image, and
    ``full_res = origin + pixel / scale`` maps them back to the 1920x1200 sensor.
    """

    name: str
    width: int
    height: int
    scale: float
    full_frame: bool

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0 or not 0 < self.scale <= 1:
            raise ValueError(f'invalid render mode {self}')


FULL_MODE = RenderMode('full', 1920, 1200, 1.0, True)
CROP_MODE = RenderMode('crop', 224, 256, 0.5, False)


@dataclass(frozen=True)
class FrameTruth:
    """Ground truth of one frame, in the pixel coordinates of that frame."""

    phase: Phase
    time_offset_s: float
    corners: EyeCornerPoints
    face_box: tuple[float, float, float, float]

    def as_dict(self) -> dict:
        """JSON-friendly form (corners as a 4x2 list in EyeCornerPoints field order)."""
        return {
            'phase': self.phase.label,
            'time_offset_s': self.time_offset_s,
            'corners': self.corners.as_array().round(3).tolist(),
            'face_box': [round(v, 3) for v in self.face_box],
        }


@dataclass
class RenderedCycle:
    """Four frames of one flash cycle (DEFAULT_PATTERN order) plus their ground truth."""

    scenario: ScenarioSpec
    cycle_index: int
    mode: RenderMode
    frames: np.ndarray  # (4, H, W) uint8
    truth: list[FrameTruth]
    crop_origin: tuple[float, float]
    pupil_radius_cm: float | None
    extras: dict = field(default_factory=dict)

    def corners_array(self) -> np.ndarray:
        """(4 frames, 4 corners, 2) float32 array of the eye corners."""
        return np.stack([t.corners.as_array() for t in self.truth]).astype(np.float32)

    def face_boxes(self) -> np.ndarray:
        """(4 frames, 4) float32 array of face boxes (x0, y0, x1, y1)."""
        return np.array([t.face_box for t in self.truth], np.float32)
