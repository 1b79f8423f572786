"""The folders are tiers: runtime code never imports offline or tool code, and the core no ROS.

Runtime (on the rig): every module outside ``offline/`` and ``tools/``. Offline code may use
the runtime, never the tools. The ROS-free core (``flash``, ``eye_corners``, ``paths``,
``camera/``, ``landmarks/``, ``liveness/``) imports neither rclpy nor a ROS message package, so
training and evaluation use it without ROS. Imports are read from the source (every import
statement, those inside functions included), then the nodes are imported in a fresh
interpreter to see what they really load. The commands the README and docs/ give must name
modules that run.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
import importlib.util
import json
from pathlib import Path
import re
import subprocess
import sys

from node_process import REPO
import pytest

PACKAGE = REPO / 'antispoof_ros'
CORE = ('flash.py', 'eye_corners.py', 'paths.py', 'camera', 'landmarks', 'liveness')
ROS_MODULES = ('rclpy', 'rcl_interfaces', 'rosidl_runtime_py', 'builtin_interfaces', 'std_msgs',
               'sensor_msgs', 'geometry_msgs', 'diagnostic_msgs', 'message_filters',
               'cv_bridge', 'ament_index_python', 'launch', 'launch_ros', 'antispoof_ros.msg',
               'antispoof_ros.nodes')
NODE_MODULES = ('antispoof_ros.nodes.camera_node', 'antispoof_ros.nodes.landmark_node',
                'antispoof_ros.nodes.liveness_node')
HEAVY_MODULES = ('torch', 'matplotlib')


def module_name(path: Path, root: Path) -> str:
    """Dotted name of a source file below ``root`` (the folder holding the package)."""
    parts = list(path.relative_to(root).with_suffix('').parts)
    if parts[-1] == '__init__':
        parts.pop()
    return '.'.join(parts)


def imported_modules(path: Path, root: Path) -> Iterator[tuple[int, str]]:
    """(line, module) for every import in a file, lazy and relative ones resolved too.

    ``from pkg import name`` yields ``pkg.name`` as well, since ``name`` may be a module;
    ``importlib.import_module('...')`` and ``__import__('...')`` with a literal count too.
    """
    package = module_name(path, root).split('.')
    if path.name != '__init__.py':
        package.pop()
    for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = '.'.join(base + ([node.module] if node.module else []))
            yield node.lineno, module
            for alias in node.names:
                yield node.lineno, f'{module}.{alias.name}'
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and getattr(node.func, 'attr', getattr(node.func, 'id', None))
              in ('import_module', '__import__')):
            yield node.lineno, node.args[0].value


def violations(files: list[Path], forbidden: tuple[str, ...], root: Path) -> list[str]:
    """'file:line imports module' for each import of a forbidden module or its submodules."""
    found = set()
    for path in files:
        for line, module in imported_modules(path, root):
            if any(module == name or module.startswith(f'{name}.') for name in forbidden):
                found.add(f'{path.relative_to(root)}:{line} imports {module}')
    return sorted(found)


def tier_files(package: Path, tier: str) -> list[Path]:
    """The source files of one tier: 'runtime', 'core', 'offline' or 'tools'."""
    everything = sorted(package.rglob('*.py'))
    if tier in ('offline', 'tools'):
        return [path for path in everything if path.relative_to(package).parts[0] == tier]
    if tier == 'runtime':
        return [path for path in everything
                if path.relative_to(package).parts[0] not in ('offline', 'tools')]
    return [path for path in everything if path.relative_to(package).parts[0] in CORE]


def test_the_tiers_are_found() -> None:
    runtime = {module_name(path, REPO) for path in tier_files(PACKAGE, 'runtime')}
    assert set(NODE_MODULES) <= runtime
    assert {'antispoof_ros.flash', 'antispoof_ros.liveness.inference'} <= runtime
    core = {module_name(path, REPO) for path in tier_files(PACKAGE, 'core')}
    assert 'antispoof_ros.camera.pylon_source' in core
    assert not any(name.startswith('antispoof_ros.nodes') for name in core)
    assert tier_files(PACKAGE, 'offline') and tier_files(PACKAGE, 'tools')


def test_runtime_imports_neither_offline_nor_tools() -> None:
    forbidden = ('antispoof_ros.offline', 'antispoof_ros.tools')
    assert violations(tier_files(PACKAGE, 'runtime'), forbidden, REPO) == []


def test_offline_never_imports_tools() -> None:
    assert violations(tier_files(PACKAGE, 'offline'), ('antispoof_ros.tools',), REPO) == []


def test_core_imports_no_ros() -> None:
    assert violations(tier_files(PACKAGE, 'core'), ROS_MODULES, REPO) == []


@pytest.mark.parametrize('statement', [
    'from antispoof_ros.offline.training import train',
    'from ..tools import demo',
    'import antispoof_ros.tools.harness.local_dds as dds',
    'importlib.import_module("antispoof_ros.offline.model.export")',
])
def test_a_forbidden_import_is_reported(tmp_path: Path, statement: str) -> None:
    """The check can fail: a lazy import inside a function of a runtime module is caught."""
    module = tmp_path / 'antispoof_ros' / 'liveness' / 'lazy.py'
    module.parent.mkdir(parents=True)
    (module.parent.parent / '__init__.py').write_text('')
    (module.parent / '__init__.py').write_text('')
    module.write_text(f'import importlib\n\n\ndef later():\n    {statement}\n')
    runtime = tier_files(tmp_path / 'antispoof_ros', 'runtime')
    found = violations(runtime, ('antispoof_ros.offline', 'antispoof_ros.tools'), tmp_path)
    assert found
    assert all(line.startswith(str(Path('antispoof_ros/liveness/lazy.py:5 imports')))
               for line in found)


def test_importing_the_nodes_loads_no_training_or_plotting_package() -> None:
    """A rig without PyTorch or matplotlib can import every node (checked in sys.modules)."""
    script = (
        'import importlib, json, sys\n'
        f'for name in {NODE_MODULES!r}:\n'
        '    importlib.import_module(name)\n'
        'print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))\n')
    result = subprocess.run([sys.executable, '-c', script], cwd=REPO, capture_output=True,
                            text=True, timeout=300, check=True)
    loaded = set(json.loads(result.stdout.splitlines()[-1]))
    assert 'rclpy' in loaded  # the nodes really were imported
    assert loaded.isdisjoint(HEAVY_MODULES), sorted(loaded & set(HEAVY_MODULES))


def test_importing_the_core_loads_no_ros() -> None:
    modules = [module_name(path, REPO) for path in tier_files(PACKAGE, 'core')]
    script = (
        'import importlib, json, sys\n'
        f'for name in {modules!r}:\n'
        '    importlib.import_module(name)\n'
        'print(json.dumps(sorted(sys.modules)))\n')
    result = subprocess.run([sys.executable, '-c', script], cwd=REPO, capture_output=True,
                            text=True, timeout=300, check=True)
    loaded = json.loads(result.stdout.splitlines()[-1])
    assert 'antispoof_ros.liveness.inference' in loaded
    ros = [name for name in loaded
           if any(name == root or name.startswith(f'{root}.') for root in ROS_MODULES)]
    assert ros == []


def documented_modules() -> dict[str, str]:
    """Every ``python -m antispoof_ros...`` in the README and docs/, with the file naming it."""
    found = {}
    for path in [REPO / 'README.md', *sorted((REPO / 'docs').rglob('*.md'))]:
        text = path.read_text(encoding='utf-8')
        for name in re.findall(r'python -m\s+(antispoof_ros(?:\.\w+)*)', text):
            found.setdefault(name, str(path.relative_to(REPO)))
    return found


def test_documented_commands_name_runnable_modules() -> None:
    modules = documented_modules()
    assert {'antispoof_ros.tools.demo', 'antispoof_ros.offline.training.reproduce',
            'antispoof_ros.tools.benchmarks.system'} <= set(modules)
    missing = []
    for name, document in sorted(modules.items()):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations is not None:
            spec = importlib.util.find_spec(f'{name}.__main__')
        if spec is None:
            missing.append(f'{document}: python -m {name}')
    assert missing == []
