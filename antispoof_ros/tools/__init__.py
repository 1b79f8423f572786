"""Tools around the nodes: the demo, benchmarks, fault injection, bag evaluation.

They start the nodes as child processes through ``tools.harness``; nothing on the rig
imports them.
"""
