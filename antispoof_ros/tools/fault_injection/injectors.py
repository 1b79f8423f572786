"""Faults the frame source injects into a window of whole flash cycles."""

from __future__ import annotations

import numpy as np

from antispoof_ros.camera.phase_labels import counter_label
from antispoof_ros.flash import Phase
from antispoof_ros.nodes.topics import EYE_CORNERS
from antispoof_ros.tools.fault_injection.malformed import MALFORMED_KINDS, malformed
from antispoof_ros.tools.fault_injection.scene import PATTERN
from antispoof_ros.tools.fault_injection.source import Outgoing

FAULT_CYCLES = 24  # 0.8 s at 30 cycles/s: longer than liveness_node's timeout_s (0.5 s)


class WindowInjector:
    """Rewrites the source's messages for the frame slots of a window of whole cycles."""

    unit = 'messages'

    def __init__(self, first_counter: int, cycles: int = FAULT_CYCLES) -> None:
        self.first = first_counter
        self.end = first_counter + cycles * len(PATTERN)
        self.injected = 0

    def __call__(self, counter: int, outgoing: list[Outgoing]) -> list[Outgoing]:
        """Rewrite inside the window, pass through outside it."""
        if self.first <= counter < self.end:
            return self.rewrite(counter, outgoing)
        return outgoing

    def rewrite(self, counter: int, outgoing: list[Outgoing]) -> list[Outgoing]:
        """What goes out instead of ``outgoing`` for this slot."""
        raise NotImplementedError


class DropFrames(WindowInjector):
    """Every right frame and a random 30 % of the others are lost."""

    unit = 'frames'

    def __init__(self, first_counter: int, seed: int = 0) -> None:
        super().__init__(first_counter)
        self._rng = np.random.default_rng(seed)

    def rewrite(self, counter: int, outgoing: list[Outgoing]) -> list[Outgoing]:
        """Drop the frame (its corners stay: the landmark node saw it)."""
        if counter_label(counter, PATTERN).phase == Phase.RIGHT or self._rng.random() < 0.3:
            self.injected += 1
            return [item for item in outgoing if item.topic == EYE_CORNERS]
        return outgoing


class DuplicateMessages(WindowInjector):
    """Every frame and corners message is delivered twice."""

    def rewrite(self, counter: int, outgoing: list[Outgoing]) -> list[Outgoing]:
        """Each message, then the same again."""
        self.injected += len(outgoing)
        return outgoing + outgoing


class ReorderCycles(WindowInjector):
    """Every other cycle is held back and delivered after the cycle that follows it."""

    unit = 'cycles'

    def __init__(self, first_counter: int) -> None:
        super().__init__(first_counter)
        self._held: list[Outgoing] = []

    def rewrite(self, counter: int, outgoing: list[Outgoing]) -> list[Outgoing]:
        """Hold even cycles of the window; release them at the end of the next one."""
        cycle, position = divmod(counter - self.first, len(PATTERN))
        if cycle % 2 == 0:
            self._held += outgoing
            return []
        if position < len(PATTERN) - 1:
            return outgoing
        late, self._held = self._held, []
        self.injected += 1
        return outgoing + late


class MalformedBurst(WindowInjector):
    """One broken message per cycle, every kind in turn, in place of the genuine one."""

    def rewrite(self, counter: int, outgoing: list[Outgoing]) -> list[Outgoing]:
        """Replace the front frame, right frame or corners of the cycle by a broken copy."""
        cycle = (counter - self.first) // len(PATTERN)
        topic, defect = MALFORMED_KINDS[cycle % len(MALFORMED_KINDS)]
        rewritten = []
        for item in outgoing:
            if item.topic == topic:
                item = Outgoing(topic, malformed(item.message, defect), counter, genuine=False)
                self.injected += 1
            rewritten.append(item)
        return rewritten
