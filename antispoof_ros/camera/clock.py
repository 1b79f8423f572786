"""Exposure time stamps in ROS time from the camera's tick clock or the host clock.

A Basler camera stamps each frame with its own tick counter at exposure start (1 ns ticks
on USB3 ace cameras). The mapping to ROS time is ``ros = tick * period + offset``, where
the offset is the smallest ``host_arrival - tick * period`` seen over a sliding window:
the frame that reached the host fastest bounds the transfer delay best. The remaining
error is the minimum transfer latency (one frame's readout + USB transfer, ~2-5 ms) plus the
drift of the two clocks over the window (ppm: microseconds).

Cameras without a tick clock (pylon's emulator reports 0) are stamped with the host arrival
time minus the exposure time; its error is the whole transfer latency and its jitter. A tick
that goes back means the camera's clock restarted: the mapping starts anew from that frame,
rather than stamping every frame by the host until the new ticks pass the old ones.
"""

from __future__ import annotations

from collections import deque


class ExposureClock:
    """Maps a frame's camera tick (or host arrival) to its exposure-start time in ns."""

    def __init__(self, tick_period_ns: float = 1.0, window: int = 240) -> None:
        self.tick_period_ns = tick_period_ns
        self._offsets: deque[int] = deque(maxlen=window)
        self._last_tick: int | None = None

    def reset(self) -> None:
        """Forget the mapping (after a reconnect the camera's clock restarts)."""
        self._offsets.clear()
        self._last_tick = None

    def stamp_ns(self, camera_tick: int, host_arrival_ns: int, exposure_ns: int) -> int:
        """Exposure-start time of a frame in the host (ROS) clock, in nanoseconds."""
        if camera_tick <= 0 or camera_tick == self._last_tick:
            return host_arrival_ns - exposure_ns
        if self._last_tick is not None and camera_tick < self._last_tick:
            self.reset()  # the camera restarted its clock without a reconnect: map anew
        self._last_tick = camera_tick
        camera_ns = int(camera_tick * self.tick_period_ns)
        self._offsets.append(host_arrival_ns - camera_ns)
        return camera_ns + min(self._offsets)

    @property
    def uses_camera_clock(self) -> bool:
        """True once camera ticks are being used."""
        return bool(self._offsets)
