"""Camera calibration files as written by ROS ``camera_calibration``, read without ROS.

The YAML holds ``image_width``, ``image_height``, ``camera_name``, ``camera_matrix``,
``distortion_model``, ``distortion_coefficients``, ``rectification_matrix`` and
``projection_matrix`` (each matrix as ``rows``, ``cols``, ``data``). ``camera_info_url``
names it as ``file:///abs/path.yaml`` or ``package://antispoof_ros/rel/path.yaml``, as
``camera_info_manager`` does. Every problem is a ``CalibrationError`` with a one-line reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from antispoof_ros.paths import SOURCE_TREE

PACKAGE = 'antispoof_ros'
FILE_SCHEME = 'file://'
PACKAGE_SCHEME = f'package://{PACKAGE}/'
# (rows, cols) of each matrix; None: any count (the distortion model decides).
MATRIX_SHAPES = {
    'camera_matrix': (3, 3),
    'distortion_coefficients': (1, None),
    'rectification_matrix': (3, 3),
    'projection_matrix': (3, 4),
}


class CalibrationError(ValueError):
    """A calibration URL or file that cannot be used; the message is a one-line reason."""


@dataclass(frozen=True)
class Calibration:
    """Intrinsics of one camera, field for field what sensor_msgs/CameraInfo carries."""

    width: int
    height: int
    camera_name: str = ''
    k: tuple[float, ...] = (0.0,) * 9
    distortion_model: str = ''
    d: tuple[float, ...] = ()
    r: tuple[float, ...] = (0.0,) * 9
    p: tuple[float, ...] = (0.0,) * 12

    @property
    def calibrated(self) -> bool:
        """False for the all-zero intrinsics ``camera_info_manager`` reports without a file."""
        return self.k[0] != 0.0

    def check_size(self, width: int, height: int) -> None:
        """Raise CalibrationError unless the calibration was made at ``width`` x ``height``."""
        if (self.width, self.height) != (width, height):
            raise CalibrationError(
                f'calibration is for {self.width}x{self.height} images but the camera '
                f'delivers {width}x{height}'
            )


def calibration_path(url: str, package_root: Path = SOURCE_TREE) -> Path:
    """File named by a ``file://`` or ``package://antispoof_ros/`` URL.

    ``package_root`` is the package's share folder (the source tree when run from a checkout).
    """
    if url.startswith(FILE_SCHEME):
        return Path(url.removeprefix(FILE_SCHEME))
    if url.startswith(PACKAGE_SCHEME):
        return package_root / url.removeprefix(PACKAGE_SCHEME)
    raise CalibrationError(
        f"camera_info_url '{url}': use file:///path/to/file.yaml or {PACKAGE_SCHEME}path"
    )


def load_calibration(url: str, package_root: Path = SOURCE_TREE) -> Calibration:
    """The calibration named by ``url`` (see ``calibration_path``)."""
    path = calibration_path(url, package_root)
    try:
        text = path.read_text(encoding='utf-8')
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else 'not a text file'
        raise CalibrationError(f'cannot read calibration file {path}: {reason}') from None
    try:
        content = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, 'problem_mark', None)
        where = f' (line {mark.line + 1})' if mark else ''
        raise CalibrationError(f'calibration file {path} is not valid YAML{where}') from None
    try:
        return parse_calibration(content)
    except CalibrationError as error:
        raise CalibrationError(f'calibration file {path}: {error}') from None


def parse_calibration(content: Any) -> Calibration:
    """Calibration from the parsed YAML of a ``camera_calibration`` file."""
    if not isinstance(content, dict):
        raise CalibrationError('expected a mapping with image_width, image_height, ...')
    width, height = (_positive_int(content, key) for key in ('image_width', 'image_height'))
    k, d, r, p = (_matrix(content, name) for name in MATRIX_SHAPES)
    return Calibration(
        width=width, height=height, camera_name=str(content.get('camera_name') or ''),
        k=k, distortion_model=str(content.get('distortion_model') or 'plumb_bob'), d=d, r=r,
        p=p,
    )


def _positive_int(content: dict, key: str) -> int:
    value = content.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise CalibrationError(f"'{key}' must be a positive integer, not {value!r}")
    return value


def _matrix(content: dict, name: str) -> tuple[float, ...]:
    entry = content.get(name)
    if not isinstance(entry, dict) or not isinstance(entry.get('data'), list):
        raise CalibrationError(f"'{name}' must have rows, cols and a data list")
    rows, cols, data = entry.get('rows'), entry.get('cols'), entry['data']
    want_rows, want_cols = MATRIX_SHAPES[name]
    if rows != want_rows or (want_cols is not None and cols != want_cols):
        shape = f"{want_rows}x{want_cols if want_cols is not None else 'N'}"
        raise CalibrationError(f"'{name}' must be {shape}, not {rows}x{cols}")
    if not isinstance(cols, int) or len(data) != rows * cols:
        raise CalibrationError(f"'{name}' has {len(data)} values for {rows}x{cols}")
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in data):
        raise CalibrationError(f"'{name}' must hold numbers only")
    return tuple(float(x) for x in data)
