"""Flash phases of the multi-flash NIR camera and the frame pairs the classifier uses.

The camera cycles dark, front, right, left (thesis figure 3.1); the liveness model sees
two frames of one cycle stacked as channels (thesis table 3.1). The integer codes equal
the PHASE_* constants of ``msg/FlashFrame.msg``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Phase(IntEnum):
    """Which NIR flash lit a frame."""

    DARK = 0
    FRONT = 1
    RIGHT = 2
    LEFT = 3

    @classmethod
    def from_name(cls, name: str) -> 'Phase':
        """Parse a lower-case phase name such as ``'front'``."""
        try:
            return cls[name.strip().upper()]
        except KeyError:
            known = ', '.join(p.name.lower() for p in cls)
            raise ValueError(f"unknown flash phase '{name}' (known: {known})") from None

    @property
    def label(self) -> str:
        """Lower-case name used in topics and parameters."""
        return self.name.lower()


# Geometry convention (thesis figure 3.1 is drawn facing the camera): the "right" flash sits
# 10 cm to the subject's right of the lens, which is the image's left, so it lights the
# image-left side of a face more: the sign of the image's right-minus-left brightness
# difference it causes is -1. The renderer (antispoof_ros.offline.synthetic) places it there.
RIGHT_FLASH_IMAGE_SIDE = -1

DEFAULT_PATTERN: tuple[Phase, ...] = (Phase.DARK, Phase.FRONT, Phase.RIGHT, Phase.LEFT)


def parse_pattern(names: list[str] | tuple[str, ...]) -> tuple[Phase, ...]:
    """Validate a flash pattern given as phase names: non-empty, each phase at most once."""
    if not names:
        raise ValueError('flash pattern is empty')
    pattern = tuple(Phase.from_name(n) for n in names)
    if len(set(pattern)) != len(pattern):
        raise ValueError(f'flash pattern repeats a phase: {list(names)}')
    return pattern


@dataclass(frozen=True)
class PairConfig:
    """Two phases whose frames are stacked into the model's 2-channel input."""

    name: str
    phase_a: Phase
    phase_b: Phase

    @property
    def is_single(self) -> bool:
        """Single-frame control: the frame is appended to itself (thesis 3.3.1)."""
        return self.phase_a == self.phase_b


PAIR_CONFIGS: dict[str, PairConfig] = {
    cfg.name: cfg
    for cfg in (
        PairConfig('P1', Phase.DARK, Phase.FRONT),
        PairConfig('P2', Phase.FRONT, Phase.RIGHT),
        PairConfig('P3', Phase.RIGHT, Phase.LEFT),
        PairConfig('single_front', Phase.FRONT, Phase.FRONT),
        PairConfig('single_right', Phase.RIGHT, Phase.RIGHT),
        PairConfig('single_left', Phase.LEFT, Phase.LEFT),
    )
}


def pair_config(name: str) -> PairConfig:
    """Look up a pair configuration by name (P1, P2, P3, single_front, ...)."""
    try:
        return PAIR_CONFIGS[name]
    except KeyError:
        raise ValueError(
            f"unknown pair configuration '{name}' (known: {', '.join(PAIR_CONFIGS)})"
        ) from None
