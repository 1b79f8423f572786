"""System benchmark and soak: landmark and liveness nodes fed 1920x1200 frames at 120 Hz.

``python -m antispoof_ros.tools.benchmarks.system``: see ``__main__`` for the command,
``frame_source`` for the camera's stand-in, ``runner`` for one layout's run and
``statistics`` for the figures and targets.
"""
