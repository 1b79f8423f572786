"""The liveness core that runs on the rig, without ROS.

Pair validation on in-band stamps (``pairing``), two-point alignment and normalisation
(``alignment``, shared with training), the ONNX model (``inference``, ``model_metadata``) and
the fail-closed fused decision (``decision``), run in that order for each set by
``pipeline.LivenessPipeline``, which the node and the offline bag evaluation share.
"""
