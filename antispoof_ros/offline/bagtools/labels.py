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
import csv
from dataclasses import dataclass
import json
from pathlib import Path
import shlex

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
# Keys that only make sense for one species; a new species without them drops them.
_SPECIES_KEYS = ('print_kind', 'mask_id')
_INTEGER_KEYS = ('mask_id',)
# Label file times at or above this many seconds are absolute (ROS time since the epoch,
# i.e. after 2001-09-09); smaller ones are offsets from the start of the recording.
ABSOLUTE_TIME_S = 1e9
TIME_KEY = 'at'
PARTIAL_SUFFIX = '.partial'


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


@dataclass(frozen=True)
class ScheduledLabels:
    """One row of a label file: labels valid from ``at`` (see ``ABSOLUTE_TIME_S``)."""

    at: float
    labels: dict[str, object]

    def start_ns(self, recording_start_ns: int) -> int:
        """Bag time at which the row's segment starts, in a recording started then."""
        at_ns = round(self.at * 1e6) * 1000  # microseconds: exact for absolute times too
        return at_ns if self.at >= ABSOLUTE_TIME_S else recording_start_ns + at_ns


def _typed(key: str, value: object) -> object:
    """Label file and typed values are text; ids that the vocabulary counts are integers."""
    if key in _INTEGER_KEYS and isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            raise BagToolError(f"{key.replace('_', ' ')} '{value}' is not a whole number") \
                from None
    return value


def _scheduled(row: Mapping[str, object], where: str) -> ScheduledLabels:
    """Validate one label file row (its time and its labels)."""
    entries = {key: None if value == '' else value for key, value in row.items()}
    at = entries.pop(TIME_KEY, None)
    try:
        at_s = float(at)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise BagToolError(f"{where}: '{TIME_KEY}' must be a time in seconds, not {at!r}") \
            from None
    if not at_s >= 0:
        raise BagToolError(f"{where}: '{TIME_KEY}' must not be negative")
    try:
        labels = validate_labels({key: _typed(key, value) for key, value in entries.items()})
    except BagToolError as error:
        raise BagToolError(f'{where}: {error}') from None
    return ScheduledLabels(at_s, labels)


def load_label_file(path: Path) -> list[ScheduledLabels]:
    """Label segments planned for a recording, sorted by time; BagToolError names the row.

    YAML: a list of mappings, each with ``at`` and the labels. CSV (``.csv``): a header row
    ``at,subject,species,lighting,pose,print_kind,...``, then one row per segment; empty
    cells are unset labels. ``at`` is seconds from the start of the recording, or an
    absolute ROS time in seconds (see ``ABSOLUTE_TIME_S``).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding='utf-8')
        if path.suffix.lower() == '.csv':
            rows: object = list(csv.DictReader(text.splitlines()))
        else:
            rows = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, csv.Error) as error:
        raise BagToolError(f'label file {path}: unreadable ({error})') from None
    if not isinstance(rows, list) or not rows or \
            not all(isinstance(row, Mapping) for row in rows):
        raise BagToolError(f'label file {path}: expected a non-empty list of label rows')
    scheduled = [_scheduled(row, f'label file {path} row {number}')
                 for number, row in enumerate(rows, start=1)]
    return sorted(scheduled, key=lambda entry: entry.at)


def parse_label_line(line: str, current: Mapping[str, object]) -> dict[str, object]:
    """Labels after a typed line of ``key=value`` words changes ``current``.

    Unmentioned labels carry over, except the species-specific ones (print kind, mask id)
    when the species changes; ``key=`` removes a label. Raises BagToolError when the
    result is not a valid label set.
    """
    try:
        words = shlex.split(line)
    except ValueError as error:
        raise BagToolError(f'cannot read {line!r}: {error}') from None
    changes: dict[str, object] = {}
    for word in words:
        key, equals, value = word.partition('=')
        if not equals or not key:
            raise BagToolError(f"'{word}' is not key=value")
        changes[key] = _typed(key, value) if value else None
    if not changes:
        raise BagToolError('no key=value given')
    labels = dict(current)
    if 'species' in changes and changes['species'] != labels.get('species'):
        for key in _SPECIES_KEYS:
            labels.pop(key, None)
    labels.update(changes)
    return validate_labels(labels)


def unfinished_recording(bag: Path) -> str | None:
    """Why ``bag`` is not a finished bag (a recorder's partial folder), else None."""
    if Path(bag).name.endswith(PARTIAL_SUFFIX):
        return (f'{bag} is an unfinished recording; recover what it holds with '
                f'python -m antispoof_ros.offline.bagtools.record --recover {bag}')
    return None


def read_label_segments(bag: Path) -> list[LabelSegment]:
    """Label segments of a bag, from its metadata.yaml (no message is read).

    BagToolError (one line) for a bag without any segment and for an unfinished recording,
    so every tool that needs labels refuses those the same way.
    """
    if reason := unfinished_recording(bag):
        raise BagToolError(reason)
    try:
        metadata = yaml.safe_load((Path(bag) / 'metadata.yaml').read_text(encoding='utf-8'))
        custom = metadata['rosbag2_bagfile_information'].get('custom_data') or {}
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError) as error:
        raise BagToolError(f'{bag}: no readable rosbag2 metadata ({error})') from None
    if METADATA_KEY not in custom:
        raise BagToolError(f'{bag}: no antispoof_ros labels in the metadata')
    segments = [LabelSegment(int(entry['start_ns']), dict(entry['labels']))
                for entry in json.loads(custom[METADATA_KEY])]
    if not segments:
        raise BagToolError(f'{bag}: the bag has no label segment')
    return segments
