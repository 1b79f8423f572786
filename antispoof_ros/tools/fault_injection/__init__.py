"""Fault injection against the real node executables: one report row per fault.

Each scenario runs liveness_node (the shipped P2 face model) and, where the fault needs it,
landmark_node as separate processes on shared-memory-only DDS with a random domain id. A frame
source in this process plays camera: 640x400 frames of a real face photo whose flash phase is
also coded in the pixels, four phases at 120 Hz with counters and stamps, plus the face's eye
corners where landmark_node is not the one to find them. The camera fault runs camera_node in
this process on pylon's emulated camera fed the same frames (at 60 Hz, a rate the emulator
keeps; liveness_node is told it), and unplugs it with the emulator's own device-removal event
(``FirePnPCallback``).

The source keeps a ledger of what it really sent, so every LivenessResult can be checked: a
scored pair must be a front frame and the right frame after it, both sent intact, with the
corners of that front frame, and scored only once. Per scenario the row says how many faults
were injected, how many node processes died on their own, what was decided during the fault
(UNKNOWN, LIVE/SPOOF from valid pairs, LIVE/SPOOF from bad pairs), mis-paired and mislabelled
messages, the recovery time, the start-up time of a restarted node, and which anomaly
counters of /diagnostics went up. Recovery runs from the end of the fault to the first
LIVE/SPOOF on a valid pair sent after it. For a restarted node the fault ends with the first
LivenessResult that rests on its answers, so its start-up (spawn, initialisation, discovery,
first answer), which depends on the machine's load, is reported apart and never counted.

    python -m antispoof_ros.tools.fault_injection [--only NAME ...]

Exit status 0 only when every expectation of every scenario held. Modules: ``scenarios``
(the table), ``faults`` and ``injectors`` (what is done), ``scene``, ``source`` and
``camera_feed`` (what plays camera), ``malformed``, ``ledger``, ``counters``, ``observer``,
``runner``, ``judge``, ``report``, ``limits``, ``cli``.
"""

from antispoof_ros.tools.fault_injection.cli import main
from antispoof_ros.tools.fault_injection.counters import CumulativeCounters, anomaly_increase
from antispoof_ros.tools.fault_injection.errors import FaultInjectionError, deleted_shared_memory
from antispoof_ros.tools.fault_injection.injectors import (
    FAULT_CYCLES,
    DropFrames,
    DuplicateMessages,
    MalformedBurst,
    ReorderCycles,
)
from antispoof_ros.tools.fault_injection.judge import check_expectations
from antispoof_ros.tools.fault_injection.ledger import Ledger
from antispoof_ros.tools.fault_injection.limits import RECOVERY_LIMIT_S
from antispoof_ros.tools.fault_injection.malformed import (
    CORNER_DEFECTS,
    FRAME_DEFECTS,
    MALFORMED_KINDS,
    malformed,
)
from antispoof_ros.tools.fault_injection.report import ScenarioResult, report
from antispoof_ros.tools.fault_injection.runner import run_scenarios
from antispoof_ros.tools.fault_injection.scenarios import BY_NAME, SCENARIOS, UNPLUGS
from antispoof_ros.tools.fault_injection.scene import Scene, make_scene, slot_header
from antispoof_ros.tools.harness.frame_player import Outgoing

__all__ = [
    'BY_NAME', 'CORNER_DEFECTS', 'FAULT_CYCLES', 'FRAME_DEFECTS', 'MALFORMED_KINDS',
    'RECOVERY_LIMIT_S', 'SCENARIOS', 'UNPLUGS', 'CumulativeCounters', 'DropFrames',
    'DuplicateMessages', 'FaultInjectionError', 'Ledger', 'MalformedBurst', 'Outgoing',
    'ReorderCycles', 'Scene', 'ScenarioResult', 'anomaly_increase', 'check_expectations',
    'deleted_shared_memory', 'main', 'make_scene', 'malformed', 'report', 'run_scenarios',
    'slot_header',
]
