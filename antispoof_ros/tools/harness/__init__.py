"""One harness for tools and tests.

``processes``: child processes (``NodeProcess``, ``NodeProcesses``); ``frame_player``: the
stand-in camera; ``local_dds``: local-only DDS; ``process_stats``: CPU and memory from /proc;
``node_replay``: a bag replayed through real node processes.
"""
