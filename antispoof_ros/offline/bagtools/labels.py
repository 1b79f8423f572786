"""Session labels of a recording: what was in front of the camera, and under which light.

The vocabulary matches the synthetic scene generator and the evaluation report (species
``live`` for bona fide presentations), so scores computed from a bag can be grouped per PAI
species without a mapping table. A bag carries its labels twice: as timestamped JSON on
``LABELS_TOPIC`` (one message per scenario segment, so one bag can hold several scenarios)
and as the list of all segments in the metadata's ``custom_data``, readable without
scanning the messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
import json
from pathlib import Path

import yaml

from antispoof_ros.offline.bagtools import BagToolError
from antispoof_ros.offline.synthetic.scene import Lighting, Pose, PrintKind, Species

SPECIES = tuple(member.value for member in Species)
LIGHTINGS = tuple(member.value for member in Lighting)
POSES = tuple(member.value for member in Pose)
PRINT_KINDS = tuple(member.value for member in PrintKind)

# Topics of ground truth written alongside the camera topics; never produced by a node.
GROUND_TRUTH_NAMESPACE = '/ground_truth'
LABELS_TOPIC = f'{GROUND_TRUTH_NAMESPACE}/labels'
LABELS_MSGTYPE = 'std_msgs/msg/String'
METADATA_KEY = 'antispoof_ros.label_segments'

_CHOICES = {'species': SPECIES, 'lighting': LIGHTINGS, 'pose': POSES, 'print_kind': PRINT_KINDS}
REQUIRED = ('subject', 'species', 'lighting')


def validate_labels(labels: Mapping[str, object]) -> dict[str, object]:
    """Check labels against the vocabulary; return them without unset (None) entries.

    Free-form keys (notes, scenario ids) are kept as long as they are JSON values.
    """
    cleaned = {key: value for key, value in labels.items() if value is not None}
    missing = [key for key in REQUIRED if cleaned.get(key) in (None, '')]
    if missing:
        raise BagToolError(f"labels lack {', '.join(missing)}")
    for key, choices in _CHOICES.items():
        if key in cleaned and cleaned[key] not in choices:
            raise BagToolError(
                f"unknown {key.replace('_', ' ')} '{cleaned[key]}' (known: {', '.join(choices)})"
            )
    if 'print_kind' in cleaned and cleaned['species'] != 'print':
        raise BagToolError(f"print kind given for species '{cleaned['species']}'")
    if 'mask_id' in cleaned and cleaned['species'] != 'mask':
        raise BagToolError(f"mask id given for species '{cleaned['species']}'")
    try:
        json.dumps(cleaned)
    except TypeError as error:
        raise BagToolError(f'labels are not JSON values: {error}') from None
    return cleaned


@dataclass(frozen=True)
class LabelSegment:
    """Labels valid from ``start_ns`` (bag time) until the next segment starts."""

    start_ns: int
    labels: dict[str, object]

    def to_json(self) -> str:
        """Text of the labels topic message and of one metadata list entry."""
        return json.dumps({'start_ns': self.start_ns, 'labels': self.labels}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> LabelSegment:
        """Inverse of ``to_json``."""
        entry = json.loads(text)
        return cls(int(entry['start_ns']), dict(entry['labels']))


def segments_to_metadata(segments: list[LabelSegment]) -> str:
    """The ``custom_data`` value that lists every segment of a bag."""
    return '[' + ', '.join(segment.to_json() for segment in segments) + ']'


def read_label_segments(bag: Path) -> list[LabelSegment]:
    """Label segments of a bag, from its metadata.yaml (no message is read)."""
    try:
        metadata = yaml.safe_load((Path(bag) / 'metadata.yaml').read_text(encoding='utf-8'))
        custom = metadata['rosbag2_bagfile_information'].get('custom_data') or {}
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError) as error:
        raise BagToolError(f'{bag}: no readable rosbag2 metadata ({error})') from None
    if METADATA_KEY not in custom:
        raise BagToolError(f'{bag}: no antispoof_ros labels in the metadata')
    return [LabelSegment(int(entry['start_ns']), dict(entry['labels']))
            for entry in json.loads(custom[METADATA_KEY])]
