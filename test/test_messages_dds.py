"""Each custom message goes from one process to another over real Fast DDS, unchanged."""

from __future__ import annotations

import os
from pathlib import Path
import subprocess
import sys
import time

import pytest
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from ros_samples import SAMPLES

pytestmark = pytest.mark.ros

HERE = Path(__file__).resolve().parent


def test_every_message_arrives_field_for_field(ros_context: Context) -> None:
    prefix = f'/dds_roundtrip_{os.getpid()}'
    node = rclpy.create_node('sample_subscriber', context=ros_context)
    received: dict[str, object] = {}
    for msgtype, make in SAMPLES.items():
        name = msgtype.rsplit('/', 1)[-1]
        node.create_subscription(
            type(make()), f'{prefix}/{name}',
            lambda msg, t=msgtype: received.setdefault(t, msg), 10,
        )
    publisher = subprocess.Popen(
        [sys.executable, str(HERE / 'publish_samples.py'), prefix],
        cwd=HERE,
        env={**os.environ, 'PYTHONPATH': str(HERE)},
    )
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    try:
        deadline = time.monotonic() + 30.0
        while len(received) < len(SAMPLES) and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
        assert publisher.wait(timeout=30) == 0
    finally:
        if publisher.poll() is None:
            publisher.kill()
            publisher.wait()
        executor.shutdown()
        node.destroy_node()

    assert set(received) == set(SAMPLES)
    for msgtype, make in SAMPLES.items():
        assert received[msgtype] == make(), msgtype
