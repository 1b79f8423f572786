"""Export a trained classifier to one self-contained ONNX file that describes itself.

The file holds the graph, the weights and the ``ModelMetadata`` (region, pair, size,
normalisation, threshold), so the liveness node can refuse a model that does not fit its
configuration. Input ``input`` (N, 2, H, W) float32, output ``live_probability`` (N, 1).
"""

from __future__ import annotations

import copy
import io
import os
from pathlib import Path
from typing import BinaryIO
import warnings

import onnx
import torch

from antispoof_ros.liveness.model_metadata import INPUT_NAME, OUTPUT_NAME, ModelMetadata
from antispoof_ros.offline.atomic_file import write_atomically
from antispoof_ros.offline.model.mobilenetv2 import LiveProbabilityModel, MobileNetV2Classifier

OPSET_VERSION = 17
BATCH_AXIS_NAME = 'batch'


def export_onnx(model: MobileNetV2Classifier, metadata: ModelMetadata, path: str | os.PathLike,
                dynamic_batch: bool = True) -> Path:
    """Write ``model`` (sigmoid applied, eval mode) with ``metadata`` to ``path`` atomically.

    The caller's model is not modified (a CPU copy is exported). ``dynamic_batch=False``
    fixes the batch size to 1.
    """
    exported = LiveProbabilityModel(copy.deepcopy(model)).to(
        'cpu', memory_format=torch.contiguous_format
    ).eval()
    example = torch.zeros(1, model.features.Conv1.in_channels,
                          metadata.input_height, metadata.input_width)
    buffer = io.BytesIO()
    dynamic_axes = (
        {INPUT_NAME: {0: BATCH_AXIS_NAME}, OUTPUT_NAME: {0: BATCH_AXIS_NAME}}
        if dynamic_batch else None)
    with warnings.catch_warnings():
        # The legacy (TorchScript) exporter is deprecated but needs no extra package, and the
        # size-dependent Keras padding is rightly frozen to this region's size by tracing.
        warnings.simplefilter('ignore', DeprecationWarning)
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        warnings.filterwarnings('ignore', message='Constant folding')
        torch.onnx.export(
            exported, (example,), buffer, dynamo=False, opset_version=OPSET_VERSION,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], dynamic_axes=dynamic_axes,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    proto.doc_string = (
        f'Liveness classifier (MobileNetV2 alpha 0.1), {metadata.region} region, '
        f'pair {metadata.pair}; output = probability that the face is live.')
    onnx.helper.set_model_props(proto, metadata.to_onnx_properties())
    onnx.checker.check_model(proto, full_check=True)
    serialized = proto.SerializeToString()

    def write(handle: BinaryIO) -> None:
        handle.write(serialized)

    return write_atomically(path, write)


def read_onnx_metadata(path: str | os.PathLike) -> ModelMetadata:
    """``ModelMetadata`` stored in an ONNX file (raises ModelMetadataError if incomplete)."""
    proto = onnx.load(os.fspath(path), load_external_data=False)
    return ModelMetadata.from_onnx_properties({p.key: p.value for p in proto.metadata_props})
