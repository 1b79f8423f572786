"""Per-epoch training checkpoints that let a killed run continue bit for bit.

Besides model, optimiser and scheduler, a checkpoint holds every random state the run
draws from (numpy for shuffling and augmentation, torch, Python, CUDA), so epoch k+1 after
a resume sees the same batches and transforms as in an uninterrupted run.
"""

from __future__ import annotations

import os
from pathlib import Path
import random
from typing import Any, BinaryIO

import numpy as np
import torch

from antispoof_ros.offline.atomic_file import write_atomically

CHECKPOINT_FORMAT_VERSION = 1


def capture_rng_states(numpy_rng: np.random.Generator) -> dict[str, Any]:
    """All random states of this process that training uses."""
    states: dict[str, Any] = {
        'numpy': numpy_rng.bit_generator.state,
        'torch': torch.get_rng_state(),
        'python': random.getstate(),
    }
    if torch.cuda.is_available():
        states['cuda'] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any], numpy_rng: np.random.Generator) -> None:
    """Inverse of ``capture_rng_states`` (``numpy_rng`` is set in place)."""
    numpy_rng.bit_generator.state = states['numpy']
    torch.set_rng_state(states['torch'])
    random.setstate(states['python'])
    if 'cuda' in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states['cuda'])


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` atomically: a crash leaves the previous epoch's checkpoint intact."""
    payload = {**state, 'format_version': CHECKPOINT_FORMAT_VERSION}

    def write(handle: BinaryIO) -> None:
        torch.save(payload, handle)

    return write_atomically(path, write)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint on the CPU without executing pickled code (``weights_only``)."""
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f'no checkpoint at {source}')
    try:
        state = torch.load(source, map_location='cpu', weights_only=True)
    except Exception as error:  # torch raises several types for a foreign or damaged file
        raise ValueError(f'{source} is not a readable checkpoint: {error}') from None
    if not isinstance(state, dict) or state.get('format_version') != CHECKPOINT_FORMAT_VERSION:
        raise ValueError(f'{source} is not a checkpoint of this training format')
    return state
