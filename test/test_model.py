"""The torch MobileNetV2 against the thesis' Keras model (appendix A) and its FLOP figures."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from antispoof_ros.liveness.alignment import EYE_REGION, FACE_REGION, Region
from antispoof_ros.offline.model import flops
from antispoof_ros.offline.model.mobilenetv2 import (
    InvertedResidual,
    MobileNetV2Classifier,
    block_name,
    correct_pad,
    keras_named_layers,
    make_divisible,
    trainable_parameter_count,
)

# Output shapes (height, width, channels) from thesis appendix A.1, face input 250x200x2.
FACE_SHAPES = """
Conv1_pad 251 201 2
Conv1 125 100 8
expanded_conv_depthwise 125 100 8
expanded_conv_project 125 100 8
block_1_expand 125 100 48
block_1_pad 127 101 48
block_1_depthwise 63 50 48
block_1_project 63 50 8
block_2_expand 63 50 48
block_2_depthwise 63 50 48
block_2_project 63 50 8
block_3_expand 63 50 48
block_3_pad 65 51 48
block_3_depthwise 32 25 48
block_3_project 32 25 8
block_4_expand 32 25 48
block_4_depthwise 32 25 48
block_4_project 32 25 8
block_5_expand 32 25 48
block_5_depthwise 32 25 48
block_5_project 32 25 8
block_6_expand 32 25 48
block_6_pad 33 27 48
block_6_depthwise 16 13 48
block_6_project 16 13 8
block_7_expand 16 13 48
block_7_depthwise 16 13 48
block_7_project 16 13 8
block_8_expand 16 13 48
block_8_depthwise 16 13 48
block_8_project 16 13 8
block_9_expand 16 13 48
block_9_depthwise 16 13 48
block_9_project 16 13 8
block_10_expand 16 13 48
block_10_depthwise 16 13 48
block_10_project 16 13 16
block_11_expand 16 13 96
block_11_depthwise 16 13 96
block_11_project 16 13 16
block_12_expand 16 13 96
block_12_depthwise 16 13 96
block_12_project 16 13 16
block_13_expand 16 13 96
block_13_pad 17 15 96
block_13_depthwise 8 7 96
block_13_project 8 7 16
block_14_expand 8 7 96
block_14_depthwise 8 7 96
block_14_project 8 7 16
block_15_expand 8 7 96
block_15_depthwise 8 7 96
block_15_project 8 7 16
block_16_expand 8 7 96
block_16_depthwise 8 7 96
block_16_project 8 7 32
Conv_1 8 7 1280
"""

# Thesis appendix A.2, eye input 48x48x2.
EYE_SHAPES = """
Conv1_pad 49 49 2
Conv1 24 24 8
expanded_conv_depthwise 24 24 8
expanded_conv_project 24 24 8
block_1_expand 24 24 48
block_1_pad 25 25 48
block_1_depthwise 12 12 48
block_1_project 12 12 8
block_2_expand 12 12 48
block_2_depthwise 12 12 48
block_2_project 12 12 8
block_3_expand 12 12 48
block_3_pad 13 13 48
block_3_depthwise 6 6 48
block_3_project 6 6 8
block_4_expand 6 6 48
block_4_depthwise 6 6 48
block_4_project 6 6 8
block_5_expand 6 6 48
block_5_depthwise 6 6 48
block_5_project 6 6 8
block_6_expand 6 6 48
block_6_pad 7 7 48
block_6_depthwise 3 3 48
block_6_project 3 3 8
block_7_expand 3 3 48
block_7_depthwise 3 3 48
block_7_project 3 3 8
block_8_expand 3 3 48
block_8_depthwise 3 3 48
block_8_project 3 3 8
block_9_expand 3 3 48
block_9_depthwise 3 3 48
block_9_project 3 3 8
block_10_expand 3 3 48
block_10_depthwise 3 3 48
block_10_project 3 3 16
block_11_expand 3 3 96
block_11_depthwise 3 3 96
block_11_project 3 3 16
block_12_expand 3 3 96
block_12_depthwise 3 3 96
block_12_project 3 3 16
block_13_expand 3 3 96
block_13_pad 5 5 96
block_13_depthwise 2 2 96
block_13_project 2 2 16
block_14_expand 2 2 96
block_14_depthwise 2 2 96
block_14_project 2 2 16
block_15_expand 2 2 96
block_15_depthwise 2 2 96
block_15_project 2 2 16
block_16_expand 2 2 96
block_16_depthwise 2 2 96
block_16_project 2 2 32
Conv_1 2 2 1280
"""

# Blocks followed by an Add layer in appendix A (expanded_conv_add, block_2_add, ...).
RESIDUAL_BLOCKS = {0, 2, 4, 5, 7, 8, 9, 11, 12, 14, 15}


def parse_shapes(table: str) -> dict[str, tuple[int, int, int]]:
    rows = (line.split() for line in table.strip().splitlines())
    return {name: (int(h), int(w), int(c)) for name, h, w, c in rows}


@pytest.fixture(scope='module')
def model() -> MobileNetV2Classifier:
    torch.manual_seed(0)
    return MobileNetV2Classifier().eval()


def test_parameter_counts_match_keras(model: MobileNetV2Classifier) -> None:
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert trainable_parameter_count(model) == 87_289
    assert sum(c.weight.numel() for c in convs) == 78_776
    assert all(c.bias is None for c in convs)
    assert sum(n.weight.numel() + n.bias.numel() for n in norms) == 7_232
    assert sum(p.numel() for p in model.logits.parameters()) == 1_281
    assert sum(n.running_mean.numel() + n.running_var.numel() for n in norms) == 7_232


def test_batch_norm_uses_keras_settings(model: MobileNetV2Classifier) -> None:
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == 52
    assert all(n.eps == 1e-3 and n.momentum == pytest.approx(0.001) for n in norms)


@pytest.mark.parametrize(
    ('region', 'table'), [(FACE_REGION, FACE_SHAPES), (EYE_REGION, EYE_SHAPES)]
)
def test_layer_shapes_match_thesis_appendix(
    model: MobileNetV2Classifier, region: Region, table: str
) -> None:
    expected = parse_shapes(table)
    layers = keras_named_layers(model)
    observed: dict[str, tuple[int, ...]] = {}
    handles = [
        layers[name].register_forward_hook(
            lambda _m, _i, out, name=name: observed.__setitem__(name, tuple(out.shape))
        )
        for name in [*expected, 'global_average_pooling2d', 'Logits']
    ]
    with torch.no_grad():
        model(torch.zeros(1, 2, region.height, region.width))
    for handle in handles:
        handle.remove()
    for name, (height, width, channels) in expected.items():
        assert observed[name] == (1, channels, height, width), name
    assert observed['global_average_pooling2d'] == (1, 1280, 1, 1)
    assert observed['Logits'] == (1, 1)
    # Layers that exist in Keras only for stride 2 (pads) or blocks > 0 (expand) exist here
    # exactly where the appendix lists them.
    named = set(layers)
    assert {n for n in named if n.endswith(('_pad', '_expand'))} == {
        n for n in expected if n.endswith(('_pad', '_expand'))
    }


def test_residual_adds_where_keras_has_them(model: MobileNetV2Classifier) -> None:
    layers = keras_named_layers(model)
    residual = {
        block_id for block_id in range(17)
        if isinstance(layers[block_name(block_id)], InvertedResidual)
        and layers[block_name(block_id)].has_residual
    }
    assert residual == RESIDUAL_BLOCKS


@pytest.mark.parametrize(('value', 'expected'), [(3.2, 8), (1, 8), (9, 16), (16, 16), (32, 32)])
def test_make_divisible_rounds_like_keras(value: float, expected: int) -> None:
    assert make_divisible(value, 8) == expected


def test_correct_pad_is_asymmetric_for_even_sizes() -> None:
    # (left, right, top, bottom): even height 250 -> (0, 1), odd width 101 -> (1, 1)
    assert correct_pad(250, 101) == (1, 1, 0, 1)


@pytest.mark.parametrize('region', [FACE_REGION, EYE_REGION])
def test_flops_reproduce_thesis_figures(model: MobileNetV2Classifier, region: Region) -> None:
    report = flops.flop_report(model, region)
    assert report.tf1_profiler_total == flops.THESIS_FLOPS[region.name]


@pytest.mark.parametrize('region', [FACE_REGION, EYE_REGION])
def test_flop_terms_agree_with_torch_flop_counter(
    model: MobileNetV2Classifier, region: Region
) -> None:
    """Torch's own counter (2 x MACs of convolutions and matmuls) is an independent check."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, 2, region.height, region.width))
    terms = flops.count_inference_flops(model, region.height, region.width)
    conv_and_matmul = (
        terms['conv 1x1/3x3 (2 x MACs)'] + terms['depthwise 3x3 (2 x MACs)']
        + terms['dense (2 x MACs + bias)'] - 1  # the bias add is not a MAC
    )
    assert counter.get_total_flops() == conv_and_matmul
    # Five stride-2 stages, each rounding up: the pooled map is ceil(size / 32).
    pooled_positions = math.ceil(region.height / 32) * math.ceil(region.width / 32)
    assert terms['global average pooling'] == 1280 * pooled_positions


def test_graph_only_flops_do_not_depend_on_input(model: MobileNetV2Classifier) -> None:
    face = flops.flop_report(model, FACE_REGION)
    eye = flops.flop_report(model, EYE_REGION)
    assert face.graph_only == eye.graph_only
    assert face.tf1_profiler_total - face.inference_total == sum(face.graph_only.values())
    # Two kernel-initialiser ops per trainable conv/dense weight.
    kernel_weights = 78_776 + 1_280
    assert face.graph_only['kernel initialisers (mul + add per weight)'] == 2 * kernel_weights


def test_flops_command_prints_breakdown(capsys: pytest.CaptureFixture[str]) -> None:
    assert flops.main(['--region', 'eye']) == 0
    out = capsys.readouterr().out
    assert 'eye region' in out and 'face region' not in out
    assert 'matches the thesis figure 2,635,686' in out
