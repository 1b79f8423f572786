"""ROS 2 nodes: thin adapters between topics and the package's plain-Python science."""
