"""ONNX export: same outputs as torch, self-describing metadata, one file written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from antispoof_ros.liveness.alignment import EYE_REGION, FACE_REGION, Region
from antispoof_ros.liveness.model_metadata import INPUT_NAME, OUTPUT_NAME, ModelMetadata
from antispoof_ros.offline.atomic_file import write_atomically
from antispoof_ros.offline.model.export import OPSET_VERSION, export_onnx, read_onnx_metadata
from antispoof_ros.offline.model.mobilenetv2 import LiveProbabilityModel, MobileNetV2Classifier


def trained_looking_model(seed: int) -> MobileNetV2Classifier:
    """Random BN affine terms and BN statistics calibrated on random data, as after training.

    Calibrating keeps each layer's output normalised, so the output depends on the input
    and the parity test exercises the BatchNorm folding of the export.
    """
    torch.manual_seed(seed)
    model = MobileNetV2Classifier()
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for norm in norms:
        nn.init.uniform_(norm.weight, 0.5, 1.5)
        nn.init.uniform_(norm.bias, -0.2, 0.2)
        norm.momentum = None  # cumulative average: one batch sets the statistics
    with torch.no_grad():
        model.train()(torch.randn(8, 2, 48, 48))
    for norm in norms:
        norm.momentum = 0.001
    return model.eval()


def metadata_for(region: Region) -> ModelMetadata:
    return ModelMetadata(
        name=f'test-{region.name}', region=region.name, pair='P2',
        input_width=region.width, input_height=region.height, threshold=0.42,
        training_data_id='synthetic-test',
    )


@pytest.mark.parametrize('region', [FACE_REGION, EYE_REGION])
def test_onnx_matches_torch(tmp_path: Path, region: Region) -> None:
    model = trained_looking_model(seed=3)
    path = export_onnx(model, metadata_for(region), tmp_path / 'model.onnx')
    batch = torch.randn(3, 2, region.height, region.width)
    with torch.no_grad():
        expected = LiveProbabilityModel(model)(batch).numpy()
    session = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    (actual,) = session.run([OUTPUT_NAME], {INPUT_NAME: batch.numpy()})
    assert actual.shape == (3, 1)
    np.testing.assert_allclose(actual, expected, atol=1e-4, rtol=0)
    assert not np.allclose(expected, expected[0])  # inputs differ, so must outputs


def test_onnx_file_describes_itself(tmp_path: Path) -> None:
    metadata = metadata_for(EYE_REGION)
    path = export_onnx(trained_looking_model(seed=1), metadata, tmp_path / 'eye.onnx')
    assert read_onnx_metadata(path) == metadata
    proto = onnx.load(str(path))
    assert max(o.version for o in proto.opset_import if o.domain in ('', 'ai.onnx')) >= 17
    assert OPSET_VERSION >= 17
    (graph_input,) = proto.graph.input
    dims = [d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim]
    assert graph_input.name == INPUT_NAME and dims == ['batch', 2, 48, 48]
    assert graph_input.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [o.name for o in proto.graph.output] == [OUTPUT_NAME]
    # Everything in one file: no external tensor data, nothing else written next to it.
    assert all(t.data_location != onnx.TensorProto.EXTERNAL for t in proto.graph.initializer)
    assert [p.name for p in tmp_path.iterdir()] == ['eye.onnx']
    session = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    assert session.get_modelmeta().custom_metadata_map == metadata.to_onnx_properties()


def test_fixed_batch_export(tmp_path: Path) -> None:
    path = export_onnx(
        trained_looking_model(seed=2), metadata_for(EYE_REGION), tmp_path / 'fixed.onnx',
        dynamic_batch=False,
    )
    dims = [d.dim_value for d in onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 2, 48, 48]


def test_export_leaves_caller_model_untouched(tmp_path: Path) -> None:
    model = trained_looking_model(seed=4).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    export_onnx(model, metadata_for(EYE_REGION), tmp_path / 'm.onnx')
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_export_to_missing_directory_fails_cleanly(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match='does not exist'):
        export_onnx(trained_looking_model(seed=0), metadata_for(EYE_REGION),
                    tmp_path / 'missing' / 'm.onnx')
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_previous_file(tmp_path: Path) -> None:
    target = tmp_path / 'model.onnx'
    target.write_bytes(b'previous model')

    def write_then_fail(handle) -> None:
        handle.write(b'half a mod')
        raise OSError('disk full')

    with pytest.raises(OSError, match='disk full'):
        write_atomically(target, write_then_fail)
    assert target.read_bytes() == b'previous model'
    assert [p.name for p in tmp_path.iterdir()] == ['model.onnx']
