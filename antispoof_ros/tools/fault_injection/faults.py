"""The kinds of fault a scenario injects, and the window of time each one covers.

Every kind returns a ``FaultWindow`` whose ``end`` is where recovery is timed from: the end
of the injected window, the last reconnect of the camera, or for a restarted node the first
LivenessResult that rests on its answers. The restarted node's start-up (``startup_s``:
spawn, initialisation, discovery by its peers, first answer) depends on the machine's load
and is reported apart, never counted as recovery.
"""

from __future__ import annotations

from dataclasses import dataclass
import time
from typing import TYPE_CHECKING

from antispoof_ros.tools.fault_injection.errors import FaultInjectionError
from antispoof_ros.tools.fault_injection.injectors import WindowInjector
from antispoof_ros.tools.fault_injection.limits import START_TIMEOUT_S
from antispoof_ros.tools.fault_injection.scene import PATTERN

if TYPE_CHECKING:
    from antispoof_ros.tools.fault_injection.runner import ScenarioRunner


@dataclass(frozen=True)
class FaultWindow:
    """An injected fault: how much, when it began and when recovery is timed from."""

    injected: int
    unit: str
    start: float  # monotonic seconds
    end: float
    counter_after: int  # recovery counts pairs from this frame counter on
    startup_s: float | None = None  # spawn -> first result resting on the restarted node


@dataclass(frozen=True)
class Unplug:
    """The emulated camera is unplugged ``count`` times (its own device-removal event)."""

    count: int
    spacing_s: float

    def inject(self, run: ScenarioRunner) -> FaultWindow:
        """Unplug, wait for camera_node to reconnect, again; the window ends at the last."""
        statistics = run.camera.stream.statistics
        start = time.monotonic()
        for unplug in range(self.count):
            time.sleep(self.spacing_s if unplug else 0.0)
            reconnects = statistics.reconnects
            run.camera.stream.camera.camera.FirePnPCallback.Execute()
            deadline = time.monotonic() + START_TIMEOUT_S
            while statistics.reconnects == reconnects:
                if time.monotonic() > deadline:
                    raise FaultInjectionError('the emulated camera did not reconnect')
                time.sleep(0.005)
        return FaultWindow(self.count, 'unplugs', start, time.monotonic(),
                           run.ledger.newest_counter + 1)


@dataclass(frozen=True)
class Restart:
    """A node process ends (SIGKILL, or SIGTERM and a clean exit), is out, and is restarted."""

    node: str
    kill: bool
    outage_s: float

    @property
    def unit(self) -> str:
        """How the report names this fault."""
        return 'SIGKILL' if self.kill else 'restart'

    def inject(self, run: ScenarioRunner) -> FaultWindow:
        """End the node, wait the outage, start it; the window ends when its answers count."""
        start = time.monotonic()
        process = run.retire(self.node)
        if self.kill:
            process.kill()
        else:
            process.terminate()
        time.sleep(self.outage_s)
        first_counter = run.source.next_counter  # the old process never saw this frame
        spawned = time.monotonic()
        run.start([self.node])
        answered, counter = run.await_first_result(first_counter, self.node)
        return FaultWindow(1, self.unit, start, answered, counter, startup_s=answered - spawned)


@dataclass(frozen=True)
class Window:
    """The frame source rewrites a window of whole cycles, starting two cycles ahead."""

    injector: type[WindowInjector]

    def inject(self, run: ScenarioRunner) -> FaultWindow:
        """Play the window through the injector; it ends when its last slot went out."""
        source = run.source
        first = (source.next_counter // len(PATTERN) + 2) * len(PATTERN)
        injector = self.injector(first)
        source.injector = injector
        while source.next_counter <= injector.end:
            time.sleep(0.01)
        source.injector = None
        return FaultWindow(injector.injected, injector.unit, source.sent_at(first),
                           source.sent_at(injector.end - 1), injector.end)


Fault = Unplug | Restart | Window
