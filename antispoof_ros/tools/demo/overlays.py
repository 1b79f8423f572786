"""Pictures of the demo's verdicts: liveness_node's overlay of one scenario per species, as PNG.

An overlay carries frame B's header, so it is filed under the scenario of the result with
the same stamp (the result may arrive before or after it). Per scenario the newest overlay
with a fused LIVE or SPOOF is kept (else the newest at all): the picture shows the verdict
the scenario ended with.
"""

from __future__ import annotations

from pathlib import Path

import cv2
from sensor_msgs.msg import Image

from antispoof_ros.msg import LivenessResult
from antispoof_ros.nodes.image_conversion import image_to_array
from antispoof_ros.nodes.messages import stamp_nanoseconds

# Overlays whose result has not arrived yet are kept this long (newest first).
MAX_PENDING = 50


class OverlayShots:
    """Files overlays by scenario and writes one PNG per species."""

    def __init__(self) -> None:
        self._filed: dict[int, tuple[int, bool]] = {}  # B stamp -> (scenario, decided)
        self._pending: dict[int, Image] = {}  # B stamp -> overlay without its result yet
        self.shots: dict[int, tuple[bool, Image]] = {}  # scenario -> (decided, overlay)

    def result_filed(self, scenario: int, result: LivenessResult) -> None:
        """A result of ``scenario``: its overlay, whenever it comes, belongs there."""
        decided = result.decision != LivenessResult.DECISION_UNKNOWN
        self._filed[stamp_nanoseconds(result.stamp_b)] = (scenario, decided)
        self._match()

    def add(self, overlay: Image) -> None:
        """An overlay received from liveness_node."""
        self._pending[stamp_nanoseconds(overlay.header.stamp)] = overlay
        self._match()
        for stamp in sorted(self._pending)[:-MAX_PENDING]:
            del self._pending[stamp]

    def _match(self) -> None:
        for stamp in [s for s in self._pending if s in self._filed]:
            scenario, decided = self._filed[stamp]
            overlay = self._pending.pop(stamp)
            if decided or not self.shots.get(scenario, (False,))[0]:
                self.shots[scenario] = (decided, overlay)

    def save(self, folder: Path, labels: list[dict[str, object]]) -> list[Path]:
        """``folder/overlay_<species>.png`` of the first scenario of each species with one."""
        folder.mkdir(parents=True, exist_ok=True)
        written: dict[str, Path] = {}
        for scenario, (_, overlay) in sorted(self.shots.items()):
            species = str(labels[scenario]['species'])
            if species not in written:
                path = folder / f'overlay_{species}.png'
                if not cv2.imwrite(str(path), image_to_array(overlay),
                                   [cv2.IMWRITE_PNG_COMPRESSION, 9]):
                    raise OSError(f'cannot write {path}')
                written[species] = path
        return list(written.values())
