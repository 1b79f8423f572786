"""Python packaging for the project-local environment (``make setup``).

On the rig, colcon builds the package with CMake (CMakeLists.txt), which also
generates the messages; this file serves pip and lists the console scripts.
"""

from setuptools import find_packages, setup

# Keep in step with ANTISPOOF_ENTRY_POINTS in CMakeLists.txt (checked by a test).
CONSOLE_SCRIPTS = [
    'camera_node=antispoof_ros.nodes.camera_node:main',
    'landmark_node=antispoof_ros.nodes.landmark_node:main',
    'liveness_node=antispoof_ros.nodes.liveness_node:main',
    'antispoof_pipeline=antispoof_ros.nodes.antispoof_pipeline:main',
]

setup(
    name='antispoof_ros',
    version='0.1.0',
    description='Face presentation-attack detection for multi-flash NIR cameras (ROS 2)',
    license='Apache-2.0',
    packages=find_packages(include=['antispoof_ros', 'antispoof_ros.*']),
    package_data={'antispoof_ros': ['models/*.onnx', 'models/*.json', 'models/*.dat',
                                    'models/*.svm']},
    python_requires='>=3.10',
    entry_points={'console_scripts': CONSOLE_SCRIPTS},
)
