"""Rates, how long the harness waits, and the recovery every scenario must meet."""

RECOVERY_LIMIT_S = 1.0  # end of the fault -> first LIVE/SPOOF on a valid pair (faults.py)
RECOVERY_WAIT_S = 3.0
START_TIMEOUT_S = 30.0
DIAGNOSTICS_PERIOD_S = 0.25
CAMERA_RATE_HZ = 60.0  # emulated camera: a rate pylon's emulator keeps under load
