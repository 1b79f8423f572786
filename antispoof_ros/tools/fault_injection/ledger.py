"""The ledger of what really reached the topics, against which every result is judged."""

from __future__ import annotations

from dataclasses import dataclass, field

from antispoof_ros.flash import Phase


@dataclass
class Ledger:
    """Genuine frames and corners that reached the topics; counters of broken messages."""

    frames: dict[int, int] = field(default_factory=dict)  # counter -> phase
    stamps: dict[int, int] = field(default_factory=dict)  # counter -> header stamp (ns)
    corners: set[int] = field(default_factory=set)
    tainted: set[int] = field(default_factory=set)
    mislabelled: int = 0  # frames or corners whose labels contradict what was sent
    newest_counter: int = 0  # the highest counter of a frame sent (or seen) intact
    newest_of_phase: dict[int, int] = field(default_factory=dict)  # phase -> highest counter

    def add_mislabelled_frame(self, counter: int) -> None:
        """A frame whose labels contradict its counter or pixels: it can be in no valid pair."""
        self.mislabelled += 1
        self.tainted.add(counter)

    def add_frame(self, counter: int, phase: int, stamp_ns: int) -> None:
        """A frame sent (or seen) intact."""
        self.frames[counter] = phase
        self.stamps[counter] = stamp_ns
        self.newest_counter = max(self.newest_counter, counter)
        self.newest_of_phase[phase] = max(self.newest_of_phase.get(phase, counter), counter)

    def pair_problem(self, counter_a: int, counter_b: int) -> str:
        """What keeps two frames from being a valid pair ('' when they are one).

        Valid: a front frame, the right frame after it and that front frame's corners, all
        intact.
        """
        if {counter_a, counter_b} & self.tainted:
            return 'a broken frame'
        if counter_b != counter_a + 1:
            return 'frames not consecutive'
        if (self.frames.get(counter_a), self.frames.get(counter_b)) != (Phase.FRONT, Phase.RIGHT):
            return 'not a front + right pair of sent frames'
        if counter_a not in self.corners:
            return 'no corners of the front frame seen'
        return ''

    def valid_pair(self, counter_a: int, counter_b: int) -> bool:
        """``pair_problem`` finds nothing."""
        return not self.pair_problem(counter_a, counter_b)
