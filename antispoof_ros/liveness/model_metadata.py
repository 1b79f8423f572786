"""What an exported liveness model says about itself: metadata in the ONNX file, and its card.

The training pipeline writes both and the liveness node reads them, so a node never runs a
model on inputs it was not trained for (wrong pair, region, size or normalisation), nor a
file other than the one its card describes: the card (JSON) records the file's sha256.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, fields
import json
from pathlib import Path
import re

from antispoof_ros.flash import PAIR_CONFIGS
from antispoof_ros.liveness.alignment import EYES, REGIONS

FORMAT_VERSION = 1
KEY_PREFIX = 'antispoof.'
INPUT_NAME = 'input'
OUTPUT_NAME = 'live_probability'
NORMALIZATIONS = ('samplewise',)
#: A shipped model ``<name>.onnx`` has its card in ``<name>.model_card.json``.
CARD_SUFFIX = '.model_card.json'
#: A training run's folder holds its model and ``model_card.json``.
RUN_CARD_FILE = 'model_card.json'
SHA256_PATTERN = re.compile('[0-9a-f]{64}')


class ModelMetadataError(ValueError):
    """Missing or contradictory model metadata; the message says which field."""


@dataclass(frozen=True)
class ModelMetadata:
    """Input contract and identity of a liveness model.

    The model takes a float32 tensor (1, 2, height, width) named ``input`` (channel 0 =
    frame A, 1 = frame B of ``pair``, aligned to ``region``) and outputs the probability
    that the face is live, shape (1, 1), named ``live_probability``.
    """

    name: str
    region: str
    pair: str
    input_width: int
    input_height: int
    normalization: str = 'samplewise'
    threshold: float = 0.5
    eye: str = 'right'
    training_data_id: str = ''
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if self.region not in REGIONS:
            raise ModelMetadataError(f"unknown region '{self.region}'")
        expected = REGIONS[self.region]
        if (self.input_width, self.input_height) != (expected.width, expected.height):
            raise ModelMetadataError(
                f'{self.region} input must be {expected.width}x{expected.height}, '
                f'not {self.input_width}x{self.input_height}'
            )
        if self.pair not in PAIR_CONFIGS:
            raise ModelMetadataError(f"unknown pair '{self.pair}'")
        if self.normalization not in NORMALIZATIONS:
            raise ModelMetadataError(f"unknown normalization '{self.normalization}'")
        if self.eye not in EYES:
            raise ModelMetadataError(f"unknown eye '{self.eye}'")
        if not 0.0 <= self.threshold <= 1.0:
            raise ModelMetadataError(f'threshold {self.threshold} outside [0, 1]')
        if self.format_version != FORMAT_VERSION:
            raise ModelMetadataError(f'unsupported metadata format {self.format_version}')

    def to_onnx_properties(self) -> dict[str, str]:
        """String key/value pairs for ``ModelProto.metadata_props``."""
        return {KEY_PREFIX + key: str(value) for key, value in asdict(self).items()}

    @classmethod
    def from_onnx_properties(cls, properties: dict[str, str]) -> ModelMetadata:
        """Parse what ``to_onnx_properties`` wrote; raise ModelMetadataError if incomplete."""
        values = {}
        for field in fields(cls):
            key = KEY_PREFIX + field.name
            if key not in properties:
                if field.default is not MISSING:
                    continue
                raise ModelMetadataError(f"model metadata lacks '{key}'")
            raw = properties[key]
            try:
                # annotations are strings here (from __future__ import annotations)
                values[field.name] = _PARSERS[field.type](raw)
            except ValueError:
                raise ModelMetadataError(f"model metadata '{key}' = '{raw}' is invalid") from None
        return cls(**values)


_PARSERS = {'int': int, 'float': float, 'str': str}


def find_model_card(model_path: Path) -> Path | None:
    """The card of ``model_path``: ``<name>.model_card.json`` beside it, or the run's card.

    A training run's folder holds ``model_card.json``; it counts if it names the file.
    """
    named = model_path.with_name(model_path.stem + CARD_SUFFIX)
    if named.is_file():
        return named
    run_card = model_path.with_name(RUN_CARD_FILE)
    if run_card.is_file() and _card_model(run_card).get('file') == model_path.name:
        return run_card
    return None


def card_sha256(card_path: Path) -> str | None:
    """The model file's sha256 that ``card_path`` records; None for a card without one."""
    sha256 = _card_model(card_path).get('sha256')
    if sha256 is None:
        return None
    if not isinstance(sha256, str) or not SHA256_PATTERN.fullmatch(sha256):
        raise ModelMetadataError(f"model card {card_path}: sha256 '{sha256}' is no sha256")
    return sha256


def _card_model(card_path: Path) -> dict:
    """The card's ``model`` section; ModelMetadataError if the card cannot be read."""
    try:
        card = json.loads(card_path.read_text(encoding='utf-8'))
    except OSError as error:
        raise ModelMetadataError(f'cannot read model card {card_path}: {error.strerror}') from None
    except ValueError:
        raise ModelMetadataError(f'model card {card_path} is not valid JSON') from None
    model = card.get('model') if isinstance(card, dict) else None
    if not isinstance(model, dict):
        raise ModelMetadataError(f"model card {card_path} has no 'model' section")
    return model
