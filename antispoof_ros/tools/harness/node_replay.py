"""Replay a bag through a real ``liveness_node`` process and collect what it publishes.

Shared by the demo and the bag evaluation. The node runs over shared-memory-only DDS with its
landmark input remapped to the bag's ground-truth eye corners, or with a real ``landmark_node``
process finding the corners on the replayed front frames. Its pair, region and eye are the
model's own (``liveness_parameters``), checked against any the caller names before a node
starts. The replay waits until every camera topic has its readers (the nodes read their
phases, this process subscribes to the rest), so no frame is published before the nodes are
matched, and the replay is lossless (antispoof_ros.offline.bagtools.replay).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
import sys
import time

import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy

from antispoof_ros.flash import DEFAULT_PATTERN, PAIR_CONFIGS, PairConfig, Phase, pair_config
from antispoof_ros.liveness.alignment import EYES, REGIONS
from antispoof_ros.liveness.inference import LivenessModel, ModelLoadError
from antispoof_ros.msg import FlashFrame, LivenessResult
from antispoof_ros.nodes.frame_qos import RELIABLE
from antispoof_ros.nodes.topics import EYE_CORNERS, LIVENESS_RESULT, flash_frame_topic
from antispoof_ros.offline.bagtools.replay import NODE_NAME as REPLAY_NODE_NAME
from antispoof_ros.paths import SHIPPED_MODELS
from antispoof_ros.tools.harness.local_dds import apply_local_dds_environment
from antispoof_ros.tools.harness.processes import NodeProcessError, NodeProcesses, log_folder

GROUND_TRUTH_CORNERS = '/ground_truth/eye_corners'
NODE_START_TIMEOUT_S = 60.0
SETTLE_S = 1.5


class NodeReplayError(RuntimeError):
    """The node did not come up or the replay failed; the message says which."""


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--model`` and the ``--pair/--region/--eye`` that default to the model's own."""
    parser.add_argument('--model', type=Path, default=SHIPPED_MODELS / 'p2_face.onnx')
    parser.add_argument('--pair', choices=tuple(PAIR_CONFIGS),
                        help="liveness_node's pair (default: the model's)")
    parser.add_argument('--region', choices=tuple(REGIONS),
                        help="liveness_node's region (default: the model's)")
    parser.add_argument('--eye', choices=EYES, help="liveness_node's eye (default: the model's)")


def liveness_parameters(model: Path, pair: str | None = None, region: str | None = None,
                        eye: str | None = None) -> dict[str, object]:
    """liveness_node's ``model_path``, ``pair``, ``region`` and ``eye`` for ``model``.

    A model that no card pins (a training run's own) gets ``allow_unpinned_model``: the node
    then marks every result's model name as unpinned.

    Each is the model's own (its metadata) unless given; ``eye`` only binds an eye model.
    An unusable model file, or a given value the model was not trained for, raises
    ModelLoadError with one line, so a tool can say so before it starts any node.
    """
    loaded = LivenessModel.load(model)
    metadata = loaded.metadata
    trained = {'pair': metadata.pair, 'region': metadata.region,
               'eye': metadata.eye if metadata.region == 'eye' else None}
    for name, given in (('pair', pair), ('region', region), ('eye', eye)):
        if given is not None and trained[name] is not None and given != trained[name]:
            raise ModelLoadError(f"{model} was trained for {name} '{trained[name]}', "
                                 f"not '{given}'")
    return {'model_path': model.resolve(), 'pair': metadata.pair, 'region': metadata.region,
            'eye': eye or metadata.eye, 'allow_unpinned_model': not loaded.pinned}


def replay_through_liveness_node(
    bag: Path, model: Path, on_result: Callable[[LivenessResult], None],
    rate: float | None = None, on_tick: Callable[[], None] | None = None,
    timeout_s: float = 1800.0, shape_model: str | None = None, log_dir: Path | None = None,
    pair: str | None = None, region: str | None = None, eye: str | None = None,
    sim_time: bool = False,
) -> None:
    """Replay ``bag`` (``rate`` None: as fast as acknowledged) and pass every result on.

    ``shape_model`` None: the bag's ground-truth corners feed the node; else a landmark_node
    with that corner model finds them (replay it at a rate it keeps up with, e.g. 1.0).
    ``pair``, ``region``, ``eye``: as ``liveness_parameters`` (ModelLoadError on a
    contradiction). The processes log to ``log_dir``, by default a temporary folder kept
    only when the replay fails (the error names the log of the process that failed).
    ``sim_time``: the nodes run on the bag's time (``use_sim_time``, the replay's ``/clock``).
    """
    parameters = liveness_parameters(model, pair, region, eye)
    apply_local_dds_environment()  # this listener and every process started below
    logs = nullcontext(log_dir) if log_dir is not None else log_folder('node_replay_')
    try:
        with logs as folder, NodeProcesses(folder) as processes:
            _replay(processes, bag, parameters, on_result, rate, on_tick, timeout_s,
                    shape_model, sim_time)
    except NodeProcessError as error:
        raise NodeReplayError(str(error)) from None


def _replay(processes: NodeProcesses, bag: Path, parameters: dict[str, object],
            on_result: Callable[[LivenessResult], None], rate: float | None,
            on_tick: Callable[[], None] | None, timeout_s: float,
            shape_model: str | None, sim_time: bool) -> None:
    config: PairConfig = pair_config(str(parameters['pair']))
    # the replay plays camera, and is lossless only towards reliable readers
    as_camera = {'camera_node_name': REPLAY_NODE_NAME, 'frame_qos': RELIABLE}
    overrides = [f'{name}:={value}' for name, value in
                 {**parameters, 'sync_queue_size': 50, **as_camera}.items()]
    if sim_time:
        overrides.append('use_sim_time:=true')
    processes.start('liveness_node', [
        sys.executable, '-m', 'antispoof_ros.nodes.liveness_node', '--ros-args',
        *[item for override in overrides for item in ('-p', override)],
        *(['-r', f'{EYE_CORNERS}:={GROUND_TRUTH_CORNERS}'] if shape_model is None else [])])
    if shape_model is not None:
        processes.start('landmark_node', [
            sys.executable, '-m', 'antispoof_ros.nodes.landmark_node', '--ros-args',
            '-p', f'shape_model:={shape_model}', '-p', f'use_sim_time:={str(sim_time).lower()}',
            *[item for name, value in as_camera.items() for item in ('-p', f'{name}:={value}')]])
    nodes = [process.name for process in processes]
    rclpy.init()
    listener = rclpy.create_node('node_replay_listener')
    listener.create_subscription(LivenessResult, LIVENESS_RESULT, on_result,
                                 QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE))
    # every camera topic gets as many readers as the most-read one (its phase read by both
    # nodes when landmark_node runs), so the replay's one count waits for all of them
    readers = {phase: (phase in (config.phase_a, config.phase_b))
               + (shape_model is not None and phase is Phase.FRONT) for phase in DEFAULT_PATTERN}
    wanted = max(readers.values())
    for phase, count in readers.items():
        for _ in range(wanted - count):
            listener.create_subscription(FlashFrame, flash_frame_topic(phase),
                                         lambda _: None, 1)
    try:
        awaited = [f'/{LIVENESS_RESULT}'] + ([f'/{EYE_CORNERS}'] if shape_model else [])

        def nodes_up() -> bool:
            rclpy.spin_once(listener, timeout_sec=0.1)
            return all(listener.count_publishers(topic) > 0 for topic in awaited)

        processes.wait_ready(nodes_up, NODE_START_TIMEOUT_S, f'{", ".join(nodes)} did not come up')
        speed = ['--as-fast-as-possible'] if rate is None else ['--rate', str(rate)]
        replay = processes.start('replay', [
            sys.executable, '-m', 'antispoof_ros.offline.bagtools.replay', str(bag), *speed,
            '--wait-for-subscribers', str(wanted), *(['--clock'] if sim_time else [])])
        deadline = time.monotonic() + timeout_s
        while replay.running and time.monotonic() < deadline:
            rclpy.spin_once(listener, timeout_sec=0.05)
            processes.check(nodes)
            if on_tick is not None:
                on_tick()
        if replay.exit_code != 0:
            raise NodeReplayError(f'replay failed (exit code {replay.exit_code}): '
                                  f'{replay.last_error_line()} (log: {replay.where_logged})')
        settle = time.monotonic() + SETTLE_S  # the last pairs are still being scored
        while time.monotonic() < settle:
            rclpy.spin_once(listener, timeout_sec=0.05)
    finally:
        listener.destroy_node()
        rclpy.try_shutdown()
