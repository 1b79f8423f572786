"""Python packaging: runtime dependencies for the rig, extras for the offline work.

On the rig, colcon builds the package with CMake (CMakeLists.txt), which also generates the
messages; ``pip install .`` brings the Python dependencies of the three nodes, nothing more.
The extras add what the offline work and the tools import. ROS 2 itself comes from the
distribution on the rig (from PyPI wheels in the project environment), so no ros-* package is
listed here. requirements.txt pins the exact version of each of these that the project
environment installs and the tests run with (checked by a test).
"""

from setuptools import find_packages, setup

# Keep in step with ANTISPOOF_ENTRY_POINTS in CMakeLists.txt (checked by a test).
CONSOLE_SCRIPTS = [
    'camera_node=antispoof_ros.nodes.camera_node:main',
    'landmark_node=antispoof_ros.nodes.landmark_node:main',
    'liveness_node=antispoof_ros.nodes.liveness_node:main',
    'antispoof_pipeline=antispoof_ros.nodes.antispoof_pipeline:main',
]

# What flash.py, eye_corners.py, paths.py, camera/, landmarks/, liveness/ and nodes/ import
# (test/test_layout.py keeps torch and matplotlib out of the nodes).
INSTALL_REQUIRES = [
    'numpy',
    'opencv-python-headless',
    'onnxruntime',
    'pypylon',
    'PyYAML',
    'dlib-bin',                 # HOG face detector and shape predictors
    'face-recognition-models',  # dlib's 5-point model (CC0), the landmark node's default
]

EXTRAS_REQUIRE = {
    # offline/bagtools: record, replay, synthetic bags
    'bags': ['rosbags', 'tqdm'],
    # offline/model, training, evaluation: PyTorch, ONNX export, report figures
    'train': ['torch', 'onnx', 'matplotlib', 'tqdm'],
    # tools/: demo, benchmarks, fault injection, bag evaluation; scikit-image and matplotlib
    # ship the two face photos of the landmark benchmarks and fault scenes
    'tools': ['rosbags', 'onnx', 'tqdm', 'scikit-image', 'matplotlib'],
    # test/ and lint (the suite itself also needs bags, train and tools)
    # mcap, mcap-ros2-support: an independent reader and CDR decoder the bag tests check
    # every bag the tools write with (only the schemas stored in the file)
    # colcon, flake8, pydocstyle: `colcon test` with the ament linters (tools/colcon_check.sh)
    'test': ['pytest', 'hypothesis', 'ruff', 'scikit-image', 'mcap', 'mcap-ros2-support',
             'colcon-core', 'colcon-cmake', 'colcon-ros', 'colcon-test-result', 'flake8',
             'pydocstyle'],
}

setup(
    name='antispoof_ros',
    version='0.1.0',
    description='Face presentation-attack detection for multi-flash NIR cameras (ROS 2)',
    license='Apache-2.0',
    packages=find_packages(include=['antispoof_ros', 'antispoof_ros.*']),
    package_data={'antispoof_ros': ['models/*.onnx', 'models/*.json', 'models/*.dat',
                                    'models/*.svm']},
    python_requires='>=3.10',
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    entry_points={'console_scripts': CONSOLE_SCRIPTS},
)
