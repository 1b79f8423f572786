"""Small real ONNX models with known outputs, built with onnx.helper, for tests."""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import TensorProto, helper

from antispoof_ros.liveness.alignment import FACE_REGION
from antispoof_ros.liveness.model_metadata import INPUT_NAME, OUTPUT_NAME, ModelMetadata

SCALE = 3.0
EYE_METADATA = ModelMetadata(name='mean_probe', region='eye', pair='P2', input_width=48,
                             input_height=48, threshold=0.6)


def build_model(
    path: Path,
    metadata: ModelMetadata | None = EYE_METADATA,
    *,
    scale: float = SCALE,
    input_shape: tuple = ('N', 2, 48, 48),
    input_name: str = INPUT_NAME,
    output_shape: tuple = ('N', 1),
    squash: bool = True,
    bias: float = 0.0,
) -> Path:
    """sigmoid(scale * mean(input) + bias) per sample (or the bare logit), shaped (N, 1).

    The node feeds sample-wise normalised inputs (mean 0), so there the output is
    sigmoid(bias): a model with a known, constant answer.
    """
    logit = 'logit' if squash else OUTPUT_NAME
    nodes = [
        helper.make_node('Flatten', [input_name], ['flat'], axis=1),
        helper.make_node('ReduceMean', ['flat'], ['mean'], axes=[1], keepdims=1),
    ]
    initializer = [helper.make_tensor('scale', TensorProto.FLOAT, [], [scale])]
    if bias:
        nodes += [helper.make_node('Mul', ['mean', 'scale'], ['scaled']),
                  helper.make_node('Add', ['scaled', 'bias'], [logit])]
        initializer.append(helper.make_tensor('bias', TensorProto.FLOAT, [], [bias]))
    else:
        nodes.append(helper.make_node('Mul', ['mean', 'scale'], [logit]))
    if squash:
        nodes.append(helper.make_node('Sigmoid', ['logit'], [OUTPUT_NAME]))
    graph = helper.make_graph(
        nodes,
        'mean_probe',
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, list(input_shape))],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, list(output_shape))],
        initializer=initializer,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    if metadata is not None:
        helper.set_model_props(model, metadata.to_onnx_properties())
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


FACE_P2_METADATA = ModelMetadata(name='constant_probe', region='face', pair='P2',
                                 input_width=FACE_REGION.width, input_height=FACE_REGION.height)


def constant_face_model(path: Path, probability_logit: float) -> Path:
    """P2 face model answering sigmoid(probability_logit) for every normalised input."""
    return build_model(path, FACE_P2_METADATA, scale=1.0, bias=probability_logit,
                       input_shape=('N', 2, FACE_REGION.height, FACE_REGION.width))
