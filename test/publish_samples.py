"""Child process for test_messages_dds: publishes each sample message over Fast DDS.

Usage: python publish_samples.py TOPIC_PREFIX. Waits until every topic has a subscriber,
publishes each sample a few times, and exits 0 (1 if no subscriber appears).
"""

from __future__ import annotations

import sys
import time

import rclpy
from ros_samples import SAMPLES

DISCOVERY_TIMEOUT_S = 20.0


def main() -> int:
    prefix = sys.argv[1]
    rclpy.init()
    node = rclpy.create_node('sample_publisher')
    publishers = []
    for msgtype, make in SAMPLES.items():
        sample = make()
        topic = f'{prefix}/{msgtype.rsplit("/", 1)[-1]}'
        publishers.append((node.create_publisher(type(sample), topic, 10), sample))
    deadline = time.monotonic() + DISCOVERY_TIMEOUT_S
    while any(pub.get_subscription_count() == 0 for pub, _ in publishers):
        if time.monotonic() > deadline:
            return 1
        time.sleep(0.05)
    for _ in range(5):
        for pub, sample in publishers:
            pub.publish(sample)
        time.sleep(0.1)
    node.destroy_node()
    rclpy.shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
