"""MobileNetV2 (width multiplier 0.1) built layer for layer as Keras builds it.

The thesis (3.3.3, appendix A) used ``tf.keras.applications.MobileNetV2(alpha=0.1,
include_top=False, weights=None)`` on a 2-channel input, followed by global average
pooling and ``Dense(1, sigmoid)``. Reproducing Keras' channel rounding, its asymmetric
padding before stride-2 convolutions and its BatchNorm settings keeps the parameter count
(87,289) and every feature-map size equal to the thesis, so results stay comparable.
Submodules carry the Keras layer names (``Conv1``, ``block_3_depthwise``, ...).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
import math

import torch
from torch import nn

ALPHA = 0.1
INPUT_CHANNELS = 2
BN_EPSILON = 1e-3
# Keras momentum 0.999 weights the running average; torch's momentum weights the new batch.
BN_MOMENTUM = 1.0 - 0.999
LAST_CONV_FILTERS = 1280


@dataclass(frozen=True)
class BlockSpec:
    """One inverted residual block of Keras' MobileNetV2 (before width scaling)."""

    filters: int
    stride: int
    expansion: int


# Keras ``MobileNetV2``: blocks 0..16 in order.
BLOCK_SPECS: tuple[BlockSpec, ...] = (
    BlockSpec(16, 1, 1),
    BlockSpec(24, 2, 6), BlockSpec(24, 1, 6),
    BlockSpec(32, 2, 6), BlockSpec(32, 1, 6), BlockSpec(32, 1, 6),
    BlockSpec(64, 2, 6), BlockSpec(64, 1, 6), BlockSpec(64, 1, 6), BlockSpec(64, 1, 6),
    BlockSpec(96, 1, 6), BlockSpec(96, 1, 6), BlockSpec(96, 1, 6),
    BlockSpec(160, 2, 6), BlockSpec(160, 1, 6), BlockSpec(160, 1, 6),
    BlockSpec(320, 1, 6),
)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Keras' ``_make_divisible``: round to a multiple of divisor, never below 90 % of value."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def correct_pad(height: int, width: int, kernel_size: int = 3) -> tuple[int, int, int, int]:
    """Keras' ``correct_pad`` as ``nn.ZeroPad2d`` padding (left, right, top, bottom).

    An even dimension gets one pixel at the end only, an odd one a pixel on both sides,
    so a 'valid' stride-2 convolution sees the same pixels as in TensorFlow.
    """
    half = kernel_size // 2
    adjust_h, adjust_w = 1 - height % 2, 1 - width % 2
    return (half - adjust_w, half, half - adjust_h, half)


class CorrectPad(nn.Module):
    """Zero padding that depends on the input size, like Keras' ``correct_pad``."""

    def __init__(self, kernel_size: int = 3) -> None:
        super().__init__()
        self.kernel_size = kernel_size

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Pad the last two dimensions of an NCHW tensor."""
        height, width = features.shape[-2:]
        return nn.functional.pad(features, correct_pad(int(height), int(width), self.kernel_size))


def _batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPSILON, momentum=BN_MOMENTUM)


def _pointwise(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False)


class InvertedResidual(nn.Module):
    """Keras' ``_inverted_res_block``: expand 1x1, depthwise 3x3, project 1x1 (+ add).

    Children are named as the Keras layers without the block prefix (``expand``,
    ``depthwise_BN``, ...); ``pad`` exists only for stride 2.
    """

    def __init__(self, in_channels: int, spec: BlockSpec, alpha: float, first: bool) -> None:
        super().__init__()
        out_channels = make_divisible(int(spec.filters * alpha), 8)
        hidden = in_channels * spec.expansion
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        if not first:  # Keras' block 0 has no expansion layer
            layers['expand'] = _pointwise(in_channels, hidden)
            layers['expand_BN'] = _batch_norm(hidden)
            layers['expand_relu'] = nn.ReLU6()
        if spec.stride == 2:
            layers['pad'] = CorrectPad(3)
        layers['depthwise'] = nn.Conv2d(
            hidden, hidden, kernel_size=3, stride=spec.stride,
            padding=1 if spec.stride == 1 else 0, groups=hidden, bias=False,
        )
        layers['depthwise_BN'] = _batch_norm(hidden)
        layers['depthwise_relu'] = nn.ReLU6()
        layers['project'] = _pointwise(hidden, out_channels)
        layers['project_BN'] = _batch_norm(out_channels)
        self.layers = nn.Sequential(layers)
        self.out_channels = out_channels
        self.has_residual = spec.stride == 1 and in_channels == out_channels

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Run the block; add the input back when shapes allow (Keras' ``*_add``)."""
        out = self.layers(features)
        return features + out if self.has_residual else out


class MobileNetV2Classifier(nn.Module):
    """Keras MobileNetV2 backbone + global average pooling + ``Dense(1)`` (logit output).

    ``forward`` returns the logit; train with ``BCEWithLogitsLoss`` (binary cross-entropy
    on sigmoid(logit), numerically stable) and export ``LiveProbabilityModel``, which
    applies the sigmoid like the thesis' ``Dense(1, activation='sigmoid')``.
    """

    def __init__(self, alpha: float = ALPHA, in_channels: int = INPUT_CHANNELS) -> None:
        super().__init__()
        first_filters = make_divisible(32 * alpha, 8)
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        layers['Conv1_pad'] = CorrectPad(3)
        layers['Conv1'] = nn.Conv2d(in_channels, first_filters, 3, stride=2, bias=False)
        layers['bn_Conv1'] = _batch_norm(first_filters)
        layers['Conv1_relu'] = nn.ReLU6()
        channels = first_filters
        for block_id, spec in enumerate(BLOCK_SPECS):
            block = InvertedResidual(channels, spec, alpha, first=block_id == 0)
            layers[block_name(block_id)] = block
            channels = block.out_channels
        # Keras widens the last convolution for alpha > 1 only: it stays 1280 here.
        last_filters = (
            make_divisible(LAST_CONV_FILTERS * alpha, 8) if alpha > 1.0 else LAST_CONV_FILTERS)
        layers['Conv_1'] = _pointwise(channels, last_filters)
        layers['Conv_1_bn'] = _batch_norm(last_filters)
        layers['out_relu'] = nn.ReLU6()
        self.features = nn.Sequential(layers)
        self.pooling = nn.AdaptiveAvgPool2d(1)
        self.logits = nn.Linear(last_filters, 1)
        keras_initialise(self)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 2, H, W) normalised images -> (N, 1) logits."""
        pooled = self.pooling(self.features(images))
        return self.logits(torch.flatten(pooled, 1))


class LiveProbabilityModel(nn.Module):
    """Classifier with the sigmoid applied: what the ONNX file and the node run."""

    def __init__(self, classifier: MobileNetV2Classifier) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 2, H, W) -> (N, 1) probability that the face is live."""
        return torch.sigmoid(self.classifier(images))


def block_name(block_id: int) -> str:
    """Keras' name of an inverted residual block (block 0 is ``expanded_conv``)."""
    return 'expanded_conv' if block_id == 0 else f'block_{block_id}'


def keras_initialise(model: nn.Module) -> None:
    """Keras defaults: Glorot-uniform kernels (fans as Keras counts them), zero biases.

    For a depthwise kernel Keras' shape is (3, 3, channels, 1), so its fan-in counts all
    channels and its fan-out one; torch's own fan computation would differ.
    """
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            receptive = module.kernel_size[0] * module.kernel_size[1]
            if module.groups > 1:
                fan_in, fan_out = receptive * module.in_channels, receptive
            else:
                fan_in, fan_out = receptive * module.in_channels, receptive * module.out_channels
            _glorot_uniform(module.weight, fan_in, fan_out)
        elif isinstance(module, nn.Linear):
            _glorot_uniform(module.weight, module.in_features, module.out_features)
            nn.init.zeros_(module.bias)


def _glorot_uniform(weight: torch.Tensor, fan_in: int, fan_out: int) -> None:
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        weight.uniform_(-limit, limit)


def keras_named_layers(model: MobileNetV2Classifier) -> dict[str, nn.Module]:
    """Layers by their Keras name (``Conv1``, ``block_6_depthwise``, ``Logits``, ...).

    Lets tests and reports speak the vocabulary of the thesis' appendix A.
    """
    named: dict[str, nn.Module] = {}
    for name, layer in model.features.named_children():
        named[name] = layer
        if isinstance(layer, InvertedResidual):
            for child_name, child in layer.layers.named_children():
                named[f'{name}_{child_name}'] = child
    named['global_average_pooling2d'] = model.pooling
    named['Logits'] = model.logits
    return named


def trainable_parameter_count(model: nn.Module) -> int:
    """Number of trainable parameters (Keras' 'Trainable params')."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
