"""/diagnostics by diagnostic_updater's conventions, the aggregator file, and frame QoS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
import socket

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from node_process import spin_until
from onnx_models import constant_face_model
import pytest
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from test_liveness_node import Feeder, feed
import yaml

from antispoof_ros.flash import Phase
from antispoof_ros.msg import FlashFrame
from antispoof_ros.nodes import diagnostics
from antispoof_ros.nodes.camera_node import CameraNode
from antispoof_ros.nodes.landmark_node import LandmarkNode
from antispoof_ros.nodes.liveness_node import LivenessNode
from antispoof_ros.nodes.topics import flash_frame_topic
from antispoof_ros.paths import SOURCE_TREE

OK, WARN, ERROR = diagnostics.OK, diagnostics.WARN, diagnostics.ERROR
AGGREGATOR_FILE = SOURCE_TREE / 'config' / 'diagnostics_aggregator.yaml'


class FakeClock:
    """Seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# -- the checks ----------------------------------------------------------------------------
def test_rate_check_levels_follow_the_counted_rate() -> None:
    clock = FakeClock()
    rate = diagnostics.RateCheck('frames', expected_hz=30.0, clock=clock)
    levels = []
    for total in (0, 30, 56, 83):  # none, 30/s, 26/s (< 90 %), 27/s (= 90 %)
        clock.now += 1.0
        report = rate.check(total)
        levels.append(report.level)
    assert levels == [ERROR, OK, WARN, OK]
    assert report.values == {'frames_per_s': '27.00', 'frames_expected_per_s': '30.00'}


def test_stale_check_goes_from_error_to_ok_to_warn_to_error() -> None:
    clock = FakeClock()
    age = diagnostics.StaleCheck('frames', warn_after_s=0.5, error_after_s=2.0, clock=clock)
    assert age.check() == diagnostics.Report(ERROR, 'no frames yet', {'frames_age_s': 'inf'})
    age.tick()
    levels = []
    for step in (0.4, 0.6, 1.5):
        clock.now += step
        levels.append(age.check().level)
    assert levels == [OK, WARN, ERROR]


def test_share_check_uses_the_growth_of_cumulative_counts() -> None:
    share = diagnostics.ShareCheck('dropped_sets', warn_above=0.1)
    assert share.check(bad_total=1, all_total=20).level == OK  # 5 %
    assert share.check(bad_total=4, all_total=30).level == WARN  # 3 of 10 since
    assert share.check(bad_total=4, all_total=30).level == OK  # nothing since


def test_worst_keeps_the_highest_level_its_messages_and_every_value() -> None:
    merged = diagnostics.worst(diagnostics.Report(OK, 'fine', {'a': 1}),
                               diagnostics.Report(WARN, 'late', {'b': 2}),
                               diagnostics.Report(WARN, 'slow', {'c': 3}))
    assert merged == diagnostics.Report(WARN, 'late; slow', {'a': 1, 'b': 2, 'c': 3})


# -- the updater ---------------------------------------------------------------------------
class DiagnosticsListener:
    """Keeps every /diagnostics message; the newest status by name."""

    def __init__(self, context: Context, *nodes: Node) -> None:
        self.peer = Node('diagnostics_listener', context=context)
        self.messages: list[DiagnosticArray] = []
        self.peer.create_subscription(DiagnosticArray, diagnostics.TOPIC, self.messages.append,
                                      50)
        self.executor = SingleThreadedExecutor(context=context)
        for node in (self.peer, *nodes):
            self.executor.add_node(node)

    def newest(self, name: str) -> DiagnosticStatus | None:
        return next((status for message in reversed(self.messages) for status in message.status
                     if status.name == name), None)

    def wait_for(self, name: str, level: bytes, text: str = '',
                 timeout: float = 20.0) -> DiagnosticStatus:
        """Status ``name`` once at ``level`` saying ``text`` (the node's own period)."""
        assert spin_until(self.executor, lambda: (status := self.newest(name)) is not None
                          and status.level == level and text in status.message,
                          timeout), self.newest(name)
        return self.newest(name)

    def close(self) -> None:
        self.executor.shutdown()
        self.peer.destroy_node()


@pytest.mark.ros
def test_updater_publishes_every_task_together_under_its_hardware_id(
        ros_context: Context) -> None:
    node = Node('updater_probe', context=ros_context)
    updater = diagnostics.Updater(node, period_s=60.0)
    names = [updater.add('first', lambda: diagnostics.Report(OK, 'fine', {'count': 3})),
             updater.add('second', lambda: diagnostics.Report(ERROR, 'broken'))]
    listener = DiagnosticsListener(ros_context, node)
    try:
        assert spin_until(listener.executor,
                          lambda: node.count_subscribers(diagnostics.TOPIC) > 0, 10)
        updater.set_hardware_id('sn-1234')
        updater.force_update()
        assert spin_until(listener.executor, lambda: bool(listener.messages), 10)
        (message,) = listener.messages
        assert names == ['updater_probe: first', 'updater_probe: second']
        assert [(s.name, s.level, s.message, s.hardware_id) for s in message.status] == [
            ('updater_probe: first', OK, 'fine', 'sn-1234'),
            ('updater_probe: second', ERROR, 'broken', 'sn-1234')]
        assert [(kv.key, kv.value) for kv in message.status[0].values] == [('count', '3')]
    finally:
        listener.close()
        node.destroy_node()


# -- the nodes -----------------------------------------------------------------------------
@pytest.mark.ros
def test_the_aggregator_file_expects_the_tasks_the_nodes_register(ros_context: Context) -> None:
    analyzers = yaml.safe_load(AGGREGATOR_FILE.read_text())['analyzers']['ros__parameters']
    expected = {name for analyzer in analyzers.values() if isinstance(analyzer, dict)
                for name in analyzer['expected']}
    for analyzer in (a for a in analyzers.values() if isinstance(a, dict)):
        assert all(name.startswith(tuple(analyzer['startswith']))
                   for name in analyzer['expected'])
    nodes = [CameraNode(context=ros_context,
                        parameter_overrides=[Parameter('autostart', value=False)]),
             LandmarkNode(context=ros_context), LivenessNode(context=ros_context)]
    try:
        registered = {name for node in nodes for name in node.diagnostics.tasks}
        assert registered == expected
        assert [node.diagnostics.hardware_id for node in nodes] == [
            'none', socket.gethostname(), socket.gethostname()]
    finally:
        for node in nodes:
            node.destroy_node()


@pytest.fixture
def nan_liveness(ros_context: Context, tmp_path: Path) -> Iterator[tuple[Feeder, object]]:
    """A liveness node whose model answers NaN, its feeder, and a /diagnostics listener."""
    model = constant_face_model(tmp_path / 'nan.onnx', probability_logit=float('nan'))
    overrides = [Parameter(name, value=value) for name, value in {
        'model_path': str(model), 'allow_unpinned_model': True, 'diagnostics_period_s': 0.2,
        'camera_node_name': 'pair_feeder', 'frame_qos': 'reliable'}.items()]
    node = LivenessNode(context=ros_context, parameter_overrides=overrides)
    feeder = Feeder(ros_context)
    listener = DiagnosticsListener(ros_context, node, feeder.node)
    try:
        assert spin_until(listener.executor, lambda: all(
            publisher.get_subscription_count() for publisher in (*feeder.frames.values(),
                                                                 feeder.corners)), 10)
        yield feeder, listener
    finally:
        listener.close()
        feeder.node.destroy_node()
        node.destroy_node()


@pytest.mark.ros
def test_liveness_tasks_go_error_on_model_errors_and_stale_input(
        nan_liveness: tuple[Feeder, DiagnosticsListener]) -> None:
    feeder, listener = nan_liveness
    feed(feeder, listener.executor, range(10))
    model = listener.wait_for('liveness_node: model', ERROR, 'not a probability')
    assert model.hardware_id == socket.gethostname()
    values = {kv.key: kv.value for kv in model.values}
    assert int(values['model_errors_total']) > 0 and values['model'].startswith('constant_probe')
    # the frames stop: the input is late, then stale
    stale = listener.wait_for('liveness_node: input', ERROR, 'frames stale')
    assert 'no sets' in stale.message  # and no synchronized set in the period either
    main = listener.newest('liveness_node: liveness')
    assert int({kv.key: kv.value for kv in main.values}['pairs_model_error']) > 0
    # no new model error in the last period: the model task is OK again
    assert listener.wait_for('liveness_node: model', OK, 'constant_probe')


# -- frame QoS -----------------------------------------------------------------------------
@pytest.mark.ros
@pytest.mark.parametrize('frame_qos', ['sensor_data', 'reliable'])
def test_frame_qos_sensor_data_takes_best_effort_frames_and_reliable_refuses_them(
        ros_context: Context, frame_qos: str) -> None:
    node = LivenessNode(context=ros_context, parameter_overrides=[
        Parameter('frame_qos', value=frame_qos), Parameter('camera_node_name', value='camera')])
    camera = Node('camera', context=ros_context)
    topic = flash_frame_topic(Phase.RIGHT)
    best_effort = camera.create_publisher(
        FlashFrame, topic, QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT))
    reliable = camera.create_publisher(FlashFrame, topic, 10)
    listener = DiagnosticsListener(ros_context, node, camera)
    try:
        # the reliable publisher matches either way: discovery is done once it has
        assert spin_until(listener.executor, lambda: reliable.get_subscription_count() == 1, 10)
        if frame_qos == 'reliable':
            assert best_effort.get_subscription_count() == 0
            return
        assert spin_until(listener.executor,
                          lambda: best_effort.get_subscription_count() == 1, 10)
        best_effort.publish(FlashFrame(frame_counter=2, phase=int(Phase.RIGHT)))

        def received() -> bool:
            node.diagnostics.force_update()
            status = listener.newest('liveness_node: input')
            values = {kv.key: kv.value for kv in status.values} if status else {}
            return values.get('frames_age_s', 'inf') != 'inf'

        assert spin_until(listener.executor, received, 10)
    finally:
        listener.close()
        camera.destroy_node()
        node.destroy_node()
