"""The liveness classifier: Keras-exact MobileNetV2 (alpha 0.1), its FLOP count, ONNX export."""

from antispoof_ros.offline.model.mobilenetv2 import LiveProbabilityModel, MobileNetV2Classifier

__all__ = ['LiveProbabilityModel', 'MobileNetV2Classifier']
