"""Floating-point operation count of the classifier, and where the thesis figures come from.

The thesis quotes 50,640,990 (face) and 2,635,686 (eye) FLOPs. Those are TensorFlow 1's
graph profiler run over the whole Keras graph at batch 1: the inference ops (2 per
multiply-accumulate, residual adds, the pooling mean, the dense layer) plus ops that never
run at inference, the random initialisers of the kernels and the BatchNorm moving-average
updates. This module counts both parts from the torch model, so the reproduction of the
thesis figures is a check of the architecture, not a copy of a number.

Usage: ``python -m antispoof_ros.offline.model.flops [--region face|eye]``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from antispoof_ros.liveness.alignment import REGIONS, Region
from antispoof_ros.offline.model.mobilenetv2 import InvertedResidual, MobileNetV2Classifier

# Figures printed in the thesis (3.3.3), shown next to the computed ones for comparison.
THESIS_FLOPS = {'face': 50_640_990, 'eye': 2_635_686}


@dataclass(frozen=True)
class FlopReport:
    """Inference FLOPs by term, plus the TF1 graph-only terms the thesis figures include."""

    region: Region
    inference: dict[str, int]
    graph_only: dict[str, int]

    @property
    def inference_total(self) -> int:
        """Operations one forward pass really performs."""
        return sum(self.inference.values())

    @property
    def tf1_profiler_total(self) -> int:
        """What TF1's profiler reports for the whole graph (the thesis' convention)."""
        return self.inference_total + sum(self.graph_only.values())


def count_inference_flops(model: MobileNetV2Classifier, height: int, width: int) -> dict[str, int]:
    """FLOPs of one (1, 2, height, width) forward pass, by term, with TF1's op costs.

    Convolutions cost 2 per multiply-accumulate, an add 1 per element, the pooling mean
    1 per input element, the dense layer 2 per weight plus its bias; BatchNorm (folded at
    inference) and ReLU6 have no registered cost in TF1's profiler and are not counted.
    """
    terms = dict.fromkeys(
        ('conv 1x1/3x3 (2 x MACs)', 'depthwise 3x3 (2 x MACs)', 'residual adds',
         'global average pooling', 'dense (2 x MACs + bias)'),
        0,
    )
    conv_key, depthwise_key, add_key, pool_key, dense_key = terms

    def on_conv(layer: nn.Conv2d, _inputs: tuple, output: torch.Tensor) -> None:
        kernel_h, kernel_w = layer.kernel_size
        macs = output.numel() * kernel_h * kernel_w * (layer.in_channels // layer.groups)
        terms[depthwise_key if layer.groups > 1 else conv_key] += 2 * macs

    def on_block(block: InvertedResidual, _inputs: tuple, output: torch.Tensor) -> None:
        if block.has_residual:
            terms[add_key] += output.numel()

    def on_pool(_layer: nn.Module, inputs: tuple, _output: torch.Tensor) -> None:
        terms[pool_key] += inputs[0].numel()

    def on_dense(layer: nn.Linear, _inputs: tuple, output: torch.Tensor) -> None:
        terms[dense_key] += 2 * layer.in_features * output.numel() + output.numel()

    hooks_by_type = (
        (nn.Conv2d, on_conv), (InvertedResidual, on_block),
        (nn.AdaptiveAvgPool2d, on_pool), (nn.Linear, on_dense),
    )
    handles = [
        module.register_forward_hook(hook)
        for module in model.modules()
        for layer_type, hook in hooks_by_type
        if isinstance(module, layer_type)]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, model.features.Conv1.in_channels, height, width))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return terms


def count_tf1_graph_only_flops(model: nn.Module) -> dict[str, int]:
    """Ops of a Keras/TF1 training graph that the profiler counts but inference never runs.

    Each Glorot-uniform kernel initialiser is ``minval + (maxval - minval) * U``: a Mul and
    an Add per weight plus one scalar Sub. Each BatchNorm layer updates two moving
    statistics as ``stat -= (stat - batch_stat) * (1 - momentum)``: a Sub and a Mul per
    channel plus one scalar Sub for ``1 - momentum``. Neither depends on the input size.
    """
    kernels = [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    statistics_per_norm = 2  # moving mean and moving variance
    return {
        'kernel initialisers (mul + add per weight)': sum(2 * k.numel() for k in kernels),
        'initialiser ranges (1 sub per kernel)': len(kernels),
        'BN moving-average updates (sub + mul per statistic)': sum(
            statistics_per_norm * 2 * norm.num_features for norm in norms),
        'BN update decay (1 sub per statistic)': statistics_per_norm * len(norms),
    }


def flop_report(model: MobileNetV2Classifier, region: Region) -> FlopReport:
    """Both parts of the count for one input region."""
    return FlopReport(
        region,
        count_inference_flops(model, region.height, region.width),
        count_tf1_graph_only_flops(model),
    )


def format_report(report: FlopReport) -> str:
    """Per-term table with the totals and the thesis figure."""
    region = report.region
    lines = [f'{region.name} region, input {region.height}x{region.width}x2 (h x w x c):']
    lines += [f'  {name:<55} {value:>12,}' for name, value in report.inference.items()]
    lines.append(f'  {"= inference FLOPs (one forward pass)":<55} {report.inference_total:>12,}')
    lines += [f'  + {name:<53} {value:>12,}' for name, value in report.graph_only.items()]
    lines.append(f'  {"= TF1 graph profiler total":<55} {report.tf1_profiler_total:>12,}')
    thesis = THESIS_FLOPS.get(region.name)
    if thesis is not None:
        verdict = 'matches' if thesis == report.tf1_profiler_total else 'DIFFERS from'
        lines.append(f'  {verdict} the thesis figure {thesis:,}')
    return '\n'.join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the FLOP breakdown for the requested regions."""
    parser = argparse.ArgumentParser(
        prog='python -m antispoof_ros.offline.model.flops',
        description='FLOPs of the MobileNetV2 (alpha 0.1) liveness classifier per region.',
    )
    parser.add_argument('--region', choices=sorted(REGIONS), action='append',
                        help='region to report (repeatable; default: all)')
    args = parser.parse_args(argv)
    model = MobileNetV2Classifier()
    names = args.region or list(REGIONS)
    print('\n\n'.join(format_report(flop_report(model, REGIONS[name])) for name in names))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
