"""Declarations that live in two places agree: entry points, phase codes, dependencies."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from node_process import REPO

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
    assert root.findtext('export/build_type') == 'ament_cmake'
    assert root.findtext('member_of_group') == 'rosidl_interface_packages'
