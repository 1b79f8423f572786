"""Train the liveness classifier on a dataset cache and export it to ONNX (thesis 3.4).

Adam, binary cross-entropy, learning rate reduced when validation accuracy stops
improving, augmentation on training samples only, sample-wise normalisation. Every epoch
ends with an atomic checkpoint; ``--resume`` continues a killed run exactly where it
stopped. At the end the best epoch's model is exported with its metadata and a decision
threshold chosen on validation data, and a model card records data, splits and metrics.

Usage: ``python -m antispoof_ros.offline.training.train --data CACHE.npz --out RUN_DIR
--epochs 60 --seed 0`` (``--max-steps 2`` for a smoke run in seconds).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
import datetime
import hashlib
import json
import math
from pathlib import Path
import sys
from typing import Any, BinaryIO

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from antispoof_ros.liveness.alignment import normalize_samplewise, region_by_name
from antispoof_ros.liveness.model_metadata import ModelMetadata
from antispoof_ros.offline.atomic_file import write_atomically
from antispoof_ros.offline.cli import OneLineArgumentParser
from antispoof_ros.offline.evaluation.metrics import (
    DEFAULT_THRESHOLD_TARGET,
    THRESHOLD_TARGETS,
    Presentations,
    choose_threshold,
    evaluate_at_threshold,
    parse_threshold_target,
)
from antispoof_ros.offline.model.export import export_onnx
from antispoof_ros.offline.model.mobilenetv2 import (
    MobileNetV2Classifier,
    trainable_parameter_count,
)
from antispoof_ros.offline.training.augment import AugmentationSettings, augment_batch
from antispoof_ros.offline.training.checkpoint import (
    capture_rng_states,
    load_checkpoint,
    restore_rng_states,
    save_checkpoint,
)
from antispoof_ros.offline.training.dataset import PairDataset, load_pair_dataset
from antispoof_ros.offline.training.splits import (
    SplitPlan,
    split_by_subject_and_mask,
    splits_from_labels,
)

CHECKPOINT_FILE = 'checkpoint.pt'
RECALIBRATION_SAMPLES = 2048  # training samples that re-estimate BatchNorm statistics
HISTORY_FILE = 'history.json'
MODEL_FILE = 'model.onnx'
CARD_FILE = 'model_card.json'
# the keys antispoof_ros.offline.evaluation plots training curves from
HISTORY_FIELDS = ('epoch', 'loss', 'accuracy', 'val_loss', 'val_accuracy', 'lr')


class TrainingInputError(ValueError):
    """Arguments, data or run directory that training cannot start from."""


@dataclass(frozen=True)
class RunConfig:
    """Everything that must stay the same for a resumed run to equal an uninterrupted one."""

    data_id: str
    seed: int
    batch_size: int
    learning_rate: float
    lr_factor: float
    lr_patience: int
    min_lr: float
    validation_fraction: float
    test_fraction: float
    validation_masks: int
    test_masks: int
    rotation_degrees: float
    shift_fraction: float
    zoom_range: float
    max_steps: int | None

    @property
    def augmentation(self) -> AugmentationSettings:
        """The augmentation ranges of this run."""
        return AugmentationSettings(self.rotation_degrees, self.shift_fraction, self.zoom_range)


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f'must be a positive integer, not {value}')
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f'must not be negative, not {value}')
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f'must be positive, not {text}')
    return value


def _unit_interval(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f'must be within [0, 1], not {text}')
    return value


def _threshold_target(text: str) -> str | float:
    try:
        return parse_threshold_target(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface."""
    parser = OneLineArgumentParser(
        prog='python -m antispoof_ros.offline.training.train',
        description='Train the MobileNetV2 liveness classifier and export it to ONNX.',
    )
    parser.add_argument('--data', type=Path, required=True, help='dataset cache (.npz)')
    parser.add_argument('--out', type=Path, required=True, help='run directory')
    parser.add_argument('--epochs', type=_positive_int, required=True,
                        help='total epochs (on --resume: including those already run)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--resume', action='store_true', help='continue from the checkpoint')
    parser.add_argument('--batch-size', type=_positive_int, default=32)
    parser.add_argument('--lr', type=_positive_float, default=1e-3, help='Adam learning rate')
    parser.add_argument('--lr-factor', type=_positive_float, default=0.1,
                        help='learning-rate factor on a plateau (Keras default 0.1)')
    parser.add_argument('--lr-patience', type=_non_negative_int, default=10,
                        help='epochs without validation-accuracy gain before reducing')
    parser.add_argument('--min-lr', type=_unit_interval, default=0.0,
                        help='lower bound of the learning rate')
    parser.add_argument('--validation-fraction', type=float, default=0.2,
                        help='share of subjects for validation')
    parser.add_argument('--test-fraction', type=float, default=0.2,
                        help='share of subjects held out for testing (0: no test split)')
    parser.add_argument('--validation-masks', type=_non_negative_int, default=1)
    parser.add_argument('--test-masks', type=_non_negative_int, default=1)
    parser.add_argument('--rotation', type=float, default=30.0, help='degrees, +-')
    parser.add_argument('--shift', type=float, default=0.1, help='fraction of size, +-')
    parser.add_argument('--zoom', type=float, default=0.15, help='Keras zoom_range')
    parser.add_argument('--threshold-target', type=_threshold_target,
                        default=DEFAULT_THRESHOLD_TARGET,
                        help=f'exported decision threshold: {", ".join(THRESHOLD_TARGETS)} '
                        '(chosen on validation data) or a fixed number in [0, 1]')
    parser.add_argument('--max-steps', type=_positive_int, default=None,
                        help='at most this many training steps per epoch (smoke runs)')
    parser.add_argument('--threads', type=_positive_int, default=1,
                        help='CPU threads (1: steady on a busy 2-core machine)')
    parser.add_argument('--device', choices=('auto', 'cpu', 'cuda'), default='auto')
    parser.add_argument('--name', default='', help='model name in the metadata')
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; bad input -> one error line and exit status 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        model_path = train(args)
    except (TrainingInputError, FileNotFoundError, ValueError) as error:
        print(f'{parser.prog}: error: {error}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f'{parser.prog}: interrupted; continue with --resume', file=sys.stderr)
        return 130
    print(f'model written to {model_path}')
    return 0


def train(args: argparse.Namespace) -> Path:
    """Train (or resume) as the parsed arguments say; return the exported model's path."""
    dataset = load_pair_dataset(args.data)
    checkpoint_path = args.out / CHECKPOINT_FILE
    if args.resume and not checkpoint_path.is_file():
        raise TrainingInputError(f'--resume: no checkpoint in {args.out}')
    if not args.resume and checkpoint_path.exists():
        raise TrainingInputError(
            f'{args.out} already holds a run; pass --resume or choose another --out')
    config = RunConfig(
        dataset.data_id, args.seed, args.batch_size, args.lr, args.lr_factor, args.lr_patience,
        args.min_lr, args.validation_fraction, args.test_fraction, args.validation_masks,
        args.test_masks, args.rotation, args.shift, args.zoom, args.max_steps,
    )
    augmentation = config.augmentation
    plan = data_splits(dataset, config)
    Presentations(np.zeros(len(dataset)), dataset.labels, dataset.info['species'])  # validates
    for split in ('train', 'validation'):
        labels = dataset.labels[plan.indices[split]]
        if not (np.any(labels == 0) and np.any(labels == 1)):
            raise TrainingInputError(f'the {split} split needs both live and attack samples')
    torch.set_num_threads(args.threads)
    device = _device(args.device)
    torch.manual_seed(config.seed)
    numpy_rng = np.random.default_rng(config.seed)
    model = MobileNetV2Classifier().to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode='max', factor=config.lr_factor, patience=config.lr_patience,
        min_lr=config.min_lr,
    )
    history: list[dict[str, float]] = []
    best: dict[str, Any] = {}
    start_epoch = 0
    if args.resume:
        state = load_checkpoint(checkpoint_path)
        _check_same_run(state['config'], asdict(config))
        model.load_state_dict(state['model'])
        optimizer.load_state_dict(state['optimizer'])
        scheduler.load_state_dict(state['scheduler'])
        restore_rng_states(state['rng'], numpy_rng)
        history, best, start_epoch = state['history'], state['best'], state['epoch']
    else:
        args.out.mkdir(parents=True, exist_ok=True)
    loss_fn = nn.BCEWithLogitsLoss()
    for epoch in range(start_epoch, args.epochs):
        learning_rate = optimizer.param_groups[0]['lr']
        train_loss, train_accuracy = _train_epoch(
            model, optimizer, loss_fn, dataset, plan.indices['train'], config, augmentation,
            numpy_rng, device, f'epoch {epoch + 1}/{args.epochs}',
        )
        recalibrate_batch_norm(model, dataset, plan.indices['train'], device, config.batch_size)
        val_loss, val_accuracy = _validate(model, dataset, plan.indices['validation'], device,
                                           config.batch_size)
        scheduler.step(val_accuracy)
        history.append(dict(zip(HISTORY_FIELDS, (
            epoch + 1, train_loss, train_accuracy, val_loss, val_accuracy, learning_rate,
        ), strict=True)))
        if not best or (val_accuracy, -val_loss) > (best['val_accuracy'], -best['val_loss']):
            best = {'epoch': epoch + 1, 'val_accuracy': val_accuracy, 'val_loss': val_loss,
                    'model': {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}}
        save_checkpoint(checkpoint_path, {
            'config': asdict(config), 'epoch': epoch + 1, 'model': model.state_dict(),
            'optimizer': optimizer.state_dict(), 'scheduler': scheduler.state_dict(),
            'rng': capture_rng_states(numpy_rng), 'history': history, 'best': best,
        })
        _write_history(args.out / HISTORY_FILE, history)
        tqdm.write(f'epoch {epoch + 1}: loss {train_loss:.4f} acc {train_accuracy:.3f} | '
                   f'val loss {val_loss:.4f} acc {val_accuracy:.3f} | lr {learning_rate:.2e}')
    best = _best_of(best, len(history), model, dataset, plan, device, config.batch_size)
    model.load_state_dict(best['model'])
    return _finish(args, model, dataset, plan, config, best, history, device)


def data_splits(dataset: PairDataset, config: RunConfig) -> SplitPlan:
    """The data's own split labels where every sample has one, else a seeded assignment."""
    if np.all(dataset.info['split'] != ''):
        try:
            return splits_from_labels(dataset.info['split'], dataset.info['subject_id'],
                                      dataset.info['mask_id'])
        except ValueError as error:
            raise TrainingInputError(str(error)) from None
    return split_by_subject_and_mask(
        dataset.info['subject_id'], dataset.info['mask_id'], config.validation_fraction,
        config.test_fraction, config.validation_masks, config.test_masks, config.seed,
    )


def _device(choice: str) -> torch.device:
    if choice == 'cuda' and not torch.cuda.is_available():
        raise TrainingInputError('--device cuda: no CUDA device available')
    if choice == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    return torch.device(choice)


def _check_same_run(saved: dict[str, Any], current: dict[str, Any]) -> None:
    for key, value in current.items():
        if saved.get(key) != value:
            raise TrainingInputError(
                f'checkpoint was made with {key}={saved.get(key)!r}, not {value!r}; '
                'resume with the same data and settings')


def _batches(indices: np.ndarray, batch_size: int, rng: np.random.Generator,
             max_steps: int | None) -> Iterator[np.ndarray]:
    order = rng.permutation(indices)
    steps = math.ceil(len(order) / batch_size)
    for step in range(steps if max_steps is None else min(steps, max_steps)):
        yield order[step * batch_size:(step + 1) * batch_size]


def _to_tensor(crops: np.ndarray, device: torch.device) -> torch.Tensor:
    """Normalised (N, H, W, 2) -> (N, 2, H, W) view, channels_last in memory already."""
    return torch.from_numpy(normalize_samplewise(crops)).permute(0, 3, 1, 2).to(device)


def _train_epoch(model: MobileNetV2Classifier, optimizer: torch.optim.Optimizer,
                 loss_fn: nn.Module, dataset: PairDataset, indices: np.ndarray,
                 config: RunConfig, augmentation: AugmentationSettings,
                 rng: np.random.Generator, device: torch.device,
                 description: str) -> tuple[float, float]:
    """One pass over (a shuffled, possibly truncated) training split: mean loss, accuracy."""
    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    batches = list(_batches(indices, config.batch_size, rng, config.max_steps))
    progress = tqdm(batches, desc=description, unit='step', disable=None, leave=False)
    for batch in progress:
        images = _to_tensor(augment_batch(dataset.crops[batch], augmentation, rng), device)
        labels = torch.from_numpy(dataset.labels[batch].astype(np.float32)).to(device)
        labels = labels.unsqueeze(1)
        optimizer.zero_grad(set_to_none=True)
        logits = model(images)
        loss = loss_fn(logits, labels)
        loss.backward()
        optimizer.step()
        total_loss += float(loss.detach()) * len(batch)
        correct += int(((logits >= 0) == (labels == 1)).sum())
        seen += len(batch)
        progress.set_postfix(loss=f'{total_loss / seen:.4f}', acc=f'{correct / seen:.3f}')
    return total_loss / seen, correct / seen


def predict(model: MobileNetV2Classifier, dataset: PairDataset, indices: np.ndarray,
            device: torch.device, batch_size: int = 64) -> np.ndarray:
    """Live probabilities of the samples at ``indices`` (eval mode, no augmentation)."""
    model.eval()
    outputs = []
    with torch.no_grad():
        for start in range(0, len(indices), batch_size):
            batch = indices[start:start + batch_size]
            images = _to_tensor(dataset.crops[batch].astype(np.float32), device)
            outputs.append(torch.sigmoid(model(images)).cpu().numpy().reshape(-1))
    return np.concatenate(outputs) if outputs else np.empty(0, np.float32)


def _best_of(best: dict[str, Any], final_epoch: int, model: MobileNetV2Classifier,
             dataset: PairDataset, plan: SplitPlan, device: torch.device,
             batch_size: int) -> dict[str, Any]:
    """The better of the best epoch so far and the final weights, freshly recalibrated.

    The final weights are validated again so a run resumed from a checkpoint written
    before recalibration existed is judged by what its weights can do.
    """
    recalibrate_batch_norm(model, dataset, plan.indices['train'], device, batch_size)
    val_loss, val_accuracy = _validate(model, dataset, plan.indices['validation'], device,
                                       batch_size)
    if best and (best['val_accuracy'], -best['val_loss']) >= (val_accuracy, -val_loss):
        return best
    tqdm.write(f'final weights (epoch {final_epoch}, recalibrated): val loss {val_loss:.4f} '
               f'acc {val_accuracy:.3f}, kept as the best')
    return {'epoch': final_epoch, 'val_accuracy': val_accuracy, 'val_loss': val_loss,
            'model': {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}}


def recalibrate_batch_norm(model: nn.Module, dataset: PairDataset, indices: np.ndarray,
                           device: torch.device, batch_size: int,
                           samples: int = RECALIBRATION_SAMPLES) -> None:
    """Re-estimate every BatchNorm's statistics for the current weights ("precise BN").

    With Keras' momentum (0.999; torch 0.001) the running statistics average over about a
    thousand steps of weights that keep changing, so in eval mode they no longer match the
    network and its output collapses to a constant (measured on the default protocol: 0.471
    validation accuracy for 11 epochs while training accuracy rose to 0.99). A pass over
    evenly spaced training samples, without augmentation, with a cumulative average,
    replaces them by the statistics of the current weights. Deterministic: no randomness.
    """
    if not len(indices):
        return
    chosen = indices[np.linspace(0, len(indices) - 1, min(samples, len(indices))).astype(int)]
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative moving average
    model.train()
    with torch.no_grad():
        for start in range(0, len(chosen), batch_size):
            batch = chosen[start:start + batch_size]
            model(_to_tensor(dataset.crops[batch].astype(np.float32), device))
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum


def _validate(model: MobileNetV2Classifier, dataset: PairDataset, indices: np.ndarray,
              device: torch.device, batch_size: int) -> tuple[float, float]:
    """Binary cross-entropy and accuracy at 0.5, as Keras reports them per epoch."""
    probabilities = predict(model, dataset, indices, device, batch_size).astype(np.float64)
    labels = dataset.labels[indices]
    clipped = np.clip(probabilities, 1e-7, 1 - 1e-7)
    loss = -np.mean(labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped))
    return float(loss), float(np.mean((probabilities >= 0.5) == (labels == 1)))


def _write_history(path: Path, history: list[dict[str, float]]) -> None:
    _write_text(path, json.dumps(history, indent=1) + '\n')


def _write_text(path: Path, text: str) -> None:
    def write(handle: BinaryIO) -> None:
        handle.write(text.encode())

    write_atomically(path, write)


def _finish(args: argparse.Namespace, model: MobileNetV2Classifier, dataset: PairDataset,
            plan: SplitPlan, config: RunConfig, best: dict[str, Any],
            history: list[dict[str, float]], device: torch.device) -> Path:
    """Threshold on validation, validation and test metrics, ONNX export, model card.

    The card pins the exported file by its sha256: liveness_node refuses a model file
    that differs from its card.
    """
    probabilities = {
        split: predict(model, dataset, indices, device, config.batch_size)
        for split, indices in plan.indices.items() if split != 'train' and indices.size}

    def labels_and_species(split: str) -> tuple[np.ndarray, np.ndarray]:
        return dataset.labels[plan.indices[split]], dataset.info['species'][plan.indices[split]]

    choice = choose_threshold(probabilities['validation'], *labels_and_species('validation'),
                              args.threshold_target)
    # Just above a score of exactly 1.0 would leave [0, 1]; 1.0 then accepts only such scores.
    threshold = min(choice.threshold, 1.0)
    metrics = {
        split: evaluate_at_threshold(scores, *labels_and_species(split), threshold).to_dict()
        for split, scores in probabilities.items()}
    region = region_by_name(dataset.region)
    metadata = ModelMetadata(
        name=args.name or f'mobilenetv2_a0.1_{dataset.region}_{dataset.pair}',
        region=dataset.region, pair=dataset.pair, input_width=region.width,
        input_height=region.height, threshold=threshold, eye=dataset.eye,
        training_data_id=dataset.data_id,
    )
    model_path = export_onnx(model, metadata, args.out / MODEL_FILE)
    card = {
        'model': {'file': MODEL_FILE,
                  'sha256': hashlib.sha256(model_path.read_bytes()).hexdigest(),
                  'metadata': asdict(metadata),
                  'architecture': 'MobileNetV2 alpha 0.1 (Keras layout), GAP, Dense(1, sigmoid)',
                  'trainable_parameters': trainable_parameter_count(model)},
        'data': {'file': str(args.data), 'data_id': dataset.data_id, 'samples': len(dataset),
                 'pair': dataset.pair, 'region': dataset.region, 'eye': dataset.eye,
                 'corner_source': dataset.corner_source,
                 'skipped_cycles': dataset.skipped_cycles},
        'splits': plan.summary(),
        'training': {**asdict(config), 'epochs_run': len(history), 'best_epoch': best['epoch'],
                     'device': str(device), 'threads': args.threads,
                     'torch_version': torch.__version__},
        'threshold': {'target': choice.target, 'value': threshold,
                      'description': choice.describe()},
        'metrics': metrics,
        'created_utc': datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds'),
    }
    _write_text(args.out / CARD_FILE, json.dumps(card, indent=2) + '\n')
    return model_path


if __name__ == '__main__':
    raise SystemExit(main())
