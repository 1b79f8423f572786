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
LIVE/SPOOF on a valid pair sent after it.

Exit status 0 only when every expectation of every scenario held. Modules: ``scenarios``
(the table and the faults), ``scene`` (what is sent, intact or broken), ``feed`` (what plays
camera, and the ledger), ``judge`` (counters, verdicts, report), ``runner`` (and the CLI).
"""
