"""The main job (``make demo``): live faces, prints and masks through the real nodes.

``python -m antispoof_ros.tools.demo`` (see ``__main__`` for the options and sources):

- ``--source emulator`` (default): unseen test-split scenarios rendered into one image folder
  for pylon's emulated camera; camera_node, landmark_node (dlib) and liveness_node run as
  three processes; each verdict is filed under its scenario by frame B's counter.
- ``--source bag``: the same scenarios as a rendered MCAP bag replayed at camera speed through
  landmark_node and liveness_node (``--ground-truth-corners``: the bag's corners instead).
- ``--source rig``: a real camera; verdicts printed live until Ctrl-C.
"""
