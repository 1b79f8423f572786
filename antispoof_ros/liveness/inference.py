"""The liveness model at run time: an ONNX file checked against what the node feeds it.

A model only means something for the inputs it was trained on, so loading refuses a file
whose metadata (antispoof_ros.liveness.model_metadata) names another pair or region than the node
is configured for, or whose input/output signature is not (N, 2, H, W) -> (N, 1). The file
is read once; the sha256 reported with every result is that of the bytes actually run, and
those bytes must have the sha256 that the model's card (see model_metadata.find_model_card)
and the caller expect, before anything parses them. A model pinned by neither is loaded only
where the caller allows unpinned models, and says so in its ``label``.
Inference stays separate from alignment (antispoof_ros.liveness.alignment.to_model_input).
"""

from __future__ import annotations

from dataclasses import dataclass
import hashlib
import math
from pathlib import Path

import numpy as np
import onnxruntime as ort

from antispoof_ros.liveness.model_metadata import (
    INPUT_NAME,
    OUTPUT_NAME,
    SHA256_PATTERN,
    ModelMetadata,
    ModelMetadataError,
    card_sha256,
    find_model_card,
)

ONNX_FLOAT = 'tensor(float)'


class ModelLoadError(RuntimeError):
    """A model file that cannot be used; the one-line message says which and why."""


@dataclass(frozen=True)
class ModelExpectation:
    """What the node is configured for; None accepts whatever the model declares."""

    pair: str | None = None
    region: str | None = None
    sha256: str | None = None  # hex digest the file must have

    def __post_init__(self) -> None:
        if self.sha256 is not None and not SHA256_PATTERN.fullmatch(self.sha256):
            raise ValueError(f"expected sha256 '{self.sha256}' is not 64 lowercase hex digits")


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _is_batch_dim(dim: object) -> bool:
    """A batch dimension that admits one sample: symbolic/unknown, or exactly 1."""
    return not isinstance(dim, int) or dim == 1


def _signature_problem(session: ort.InferenceSession, metadata: ModelMetadata) -> str | None:
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if [i.name for i in inputs] != [INPUT_NAME] or [o.name for o in outputs] != [OUTPUT_NAME]:
        return (
            f'expected input {INPUT_NAME!r} and output {OUTPUT_NAME!r}, got inputs '
            f'{[i.name for i in inputs]} and outputs {[o.name for o in outputs]}'
        )
    model_input, model_output = inputs[0], outputs[0]
    if model_input.type != ONNX_FLOAT or model_output.type != ONNX_FLOAT:
        return f'expected float32 tensors, got {model_input.type} -> {model_output.type}'
    shape = list(model_input.shape)
    expected = [2, metadata.input_height, metadata.input_width]
    if len(shape) != 4 or not _is_batch_dim(shape[0]) or shape[1:] != expected:
        return f'input shape {shape} is not (N, 2, {expected[1]}, {expected[2]})'
    out_shape = list(model_output.shape)
    if len(out_shape) != 2 or not _is_batch_dim(out_shape[0]) or out_shape[1] != 1:
        return f'output shape {out_shape} is not (N, 1)'
    return None


def _check_pins(path: Path, sha256: str, expected: ModelExpectation | None) -> tuple[str, ...]:
    """What pins ``sha256`` (card file name, 'expected_sha256'); ModelLoadError on a mismatch."""
    pins: list[tuple[str, str]] = []
    if expected is not None and expected.sha256 is not None:
        pins.append(('expected_sha256', expected.sha256))
    try:
        card = find_model_card(path)
        card_hash = card_sha256(card) if card is not None else None
    except ModelMetadataError as error:
        raise ModelLoadError(str(error)) from None
    if card_hash is not None:
        pins.append((card.name, card_hash))
    for source, pinned in pins:
        if sha256 != pinned:
            raise ModelLoadError(f'{path} has sha256 {sha256[:16]}..., not the '
                                 f'{pinned[:16]}... of its {source}: refusing to run it')
    return tuple(source for source, _ in pins)


class LivenessModel:
    """A loaded, checked liveness model; ``predict`` returns the live probability."""

    def __init__(
        self, session: ort.InferenceSession, metadata: ModelMetadata, path: Path, sha256: str,
        pinned_by: tuple[str, ...] = (),
    ) -> None:
        """Wrap a checked session; ``pinned_by`` names what fixed the file's sha256."""
        self.session = session
        self.metadata = metadata
        self.path = path
        self.sha256 = sha256
        self.pinned_by = pinned_by
        self.input_shape = (1, 2, metadata.input_height, metadata.input_width)

    @classmethod
    def load(
        cls,
        path: str | Path,
        threads: int = 1,
        expected: ModelExpectation | None = None,
        allow_unpinned: bool = True,
    ) -> LivenessModel:
        """Read, check and prepare a model; raise ModelLoadError (one line) if unusable.

        ``threads`` sets both intra- and inter-op threads: one keeps latency predictable
        next to the camera and landmark work on a small CPU. A file whose sha256 differs
        from its card's or ``expected``'s is refused; so is one pinned by neither, unless
        ``allow_unpinned``.
        """
        path = Path(path)
        if threads < 1:
            raise ValueError(f'threads must be at least 1, not {threads}')
        try:
            model_bytes = path.read_bytes()
        except OSError as error:
            raise ModelLoadError(f'cannot read model {path}: {error.strerror}') from None
        sha256 = hashlib.sha256(model_bytes).hexdigest()
        pinned_by = _check_pins(path, sha256, expected)
        if not pinned_by and not allow_unpinned:
            raise ModelLoadError(f'{path} is not pinned: no model card with its sha256 beside '
                                 'it and no expected sha256 given')
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = threads
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            session = ort.InferenceSession(
                model_bytes, options, providers=['CPUExecutionProvider']
            )
        except Exception as error:  # noqa: BLE001 - onnxruntime raises several private types
            reason = _first_line(error)
            raise ModelLoadError(f'{path} is not a usable ONNX model: {reason}') from None
        try:
            metadata = ModelMetadata.from_onnx_properties(
                session.get_modelmeta().custom_metadata_map
            )
        except ModelMetadataError as error:
            raise ModelLoadError(f'{path}: {error}') from None
        problem = _signature_problem(session, metadata)
        if problem is None and expected is not None:
            for name in ('pair', 'region'):
                wanted, declared = getattr(expected, name), getattr(metadata, name)
                if wanted is not None and wanted != declared:
                    problem = f'model was trained for {name} {declared!r}, node uses {wanted!r}'
        if problem is not None:
            raise ModelLoadError(f'{path}: {problem}')
        return cls(session, metadata, path, sha256, pinned_by)

    @property
    def pinned(self) -> bool:
        """True when a model card or the caller fixed the sha256 this file has."""
        return bool(self.pinned_by)

    @property
    def label(self) -> str:
        """The model's name, marked where nothing pinned the file."""
        return self.metadata.name if self.pinned else f'{self.metadata.name} (unpinned)'

    @property
    def threshold(self) -> float:
        """Per-pair decision threshold declared by the model."""
        return self.metadata.threshold

    def predict(self, model_input: np.ndarray) -> float:
        """Live probability for one (1, 2, H, W) float32 input; NaN flags an invalid output.

        An output that is not a finite number in [0, 1] is returned as NaN, never clipped,
        so the decision can only treat it as a model error.
        """
        if model_input.shape != self.input_shape or model_input.dtype != np.float32:
            raise ValueError(
                f'model input must be float32 {self.input_shape}, '
                f'got {model_input.dtype} {model_input.shape}'
            )
        (output,) = self.session.run([OUTPUT_NAME], {INPUT_NAME: model_input})
        probability = float(np.asarray(output).reshape(-1)[0])
        if not (math.isfinite(probability) and 0.0 <= probability <= 1.0):
            return math.nan
        return probability
