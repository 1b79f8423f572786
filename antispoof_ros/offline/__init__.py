"""Offline work, never imported by the nodes: synthetic data, bags, training, evaluation.

Needs the ``train`` extra (PyTorch, matplotlib) for training and reports; the rig installs
none of it.
"""
