"""Checkpoints: plain types and tensors only, so `torch.load(weights_only=True)` reads them.

Every checkpoint digitlab writes carries a sha256 of its weights (checkpoints.integrity), checked
when it is read; every checkpoint read, the tutorial's bare state_dict too, must hold finite
weights of the shapes its model arguments give, and sane classes, mean, std and temperature.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from digitlab import __version__
from digitlab.checkpoints.integrity import (
    describe_names,
    metadata_problem,
    non_finite_tensors,
    shape_problem,
    weights_digest,
)
from digitlab.data import MNIST, MNIST_MEAN, MNIST_STD
from digitlab.errors import CheckpointError, DigitlabError
from digitlab.files import atomic_path
from digitlab.models import create_model, list_models, num_classes_of

logger = logging.getLogger(__name__)

FORMAT = "digitlab-checkpoint"
FORMAT_VERSION = 1
DIGEST = "weights_sha256"  # the payload key of checkpoints.integrity.weights_digest (optional)
DEFAULT_MODEL = Path(__file__).parents[1] / "weights" / "default.pt"


@dataclass
class Checkpoint:
    """A model and everything needed to rebuild, use and resume it."""

    model_name: str
    model_args: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    mean: float = MNIST_MEAN
    std: float = MNIST_STD
    classes: list[str] = field(default_factory=lambda: list(MNIST.classes))
    dataset: str = MNIST.name
    epoch: int = 0
    # Confidences are softmax(logits / temperature); 1.0 is the model as trained, and
    # `digitlab pack --calibrate` stores one fitted on a validation split (digitlab.reports.calibration).
    temperature: float = 1.0
    metrics: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    optimizer_state: dict[str, Any] | None = None
    scheduler_state: dict[str, Any] | None = None
    scaler_state: dict[str, Any] | None = None  # fp16 mixed precision's GradScaler (training.precision)
    rng_state: torch.Tensor | None = None
    digitlab_version: str = __version__
    origin: str = "digitlab"  # or "tutorial state_dict"

    def build_model(self, device: torch.device | str = "cpu") -> nn.Module:
        """Rebuild the model and load the weights (strictly)."""
        model = create_model(self.model_name, **self.model_args)
        try:
            model.load_state_dict(self.state_dict)
        except RuntimeError as e:
            first = str(e).strip().splitlines()[0]
            raise CheckpointError(f"weights do not fit model {self.model_name!r}: {first}") from e
        return model.to(device).eval()


def save_checkpoint(path: str | os.PathLike[str], checkpoint: Checkpoint) -> None:
    """Write `checkpoint` atomically, with the digest of its weights; weights holding a NaN or
    an infinity are refused (CheckpointError) and nothing is written."""
    state = {k: v.detach().cpu() for k, v in checkpoint.state_dict.items()}
    broken = non_finite_tensors(state)
    if broken:
        raise CheckpointError(f"refusing to write {path}: weights {describe_names(broken)} hold "
                              "NaN or inf (the training diverged)")
    payload = dataclasses.asdict(checkpoint)
    payload["state_dict"] = state
    payload.pop("origin")
    payload["format"] = FORMAT
    payload["format_version"] = FORMAT_VERSION
    payload[DIGEST] = weights_digest(state)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def _recognise_state_dict(state: dict[str, Any]) -> str | None:
    """Name of the registered model (default arguments) whose parameters match `state`."""
    if not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        return None
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    for name in list_models():
        reference = create_model(name).state_dict()
        if shapes == {k: tuple(v.shape) for k, v in reference.items()}:
            return name
    return None


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Load a digitlab checkpoint, or a tutorial-style plain state_dict (`mnist_cnn.pt`)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; train one with `digitlab train`")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for foreign files; all mean the same here
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "weights_only" in str(e) or "Weights only" in str(e):
            reason = "it holds Python objects, not just tensors and plain values"
        raise CheckpointError(
            f"{path} is not a loadable PyTorch checkpoint ({reason[:120]}); "
            "pass a .pt file written by `digitlab train` or the tutorial's --save-model"
        ) from None
    if not isinstance(payload, dict):
        raise CheckpointError(f"{path} holds a {type(payload).__name__}, not a checkpoint")
    if payload.get("format") == FORMAT:
        return _from_payload(path, payload)
    model_name = _recognise_state_dict(payload)
    if model_name is None:
        raise CheckpointError(
            f"{path} is not a digitlab checkpoint, nor a state_dict of a known model "
            f"({', '.join(list_models())}); pass a .pt file written by `digitlab train`"
        )
    logger.info("%s is a plain state_dict of %r (tutorial format)", path, model_name)
    checkpoint = Checkpoint(
        model_name=model_name, model_args={}, state_dict=payload, origin="tutorial state_dict"
    )
    _check_values(path, checkpoint)
    return checkpoint


def _from_payload(path: Path, payload: dict[str, Any]) -> Checkpoint:
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {version!r}; this digitlab ({__version__}) reads "
            f"up to {FORMAT_VERSION}: upgrade digitlab"
        )
    names = {f.name for f in dataclasses.fields(Checkpoint)}
    try:
        checkpoint = Checkpoint(**{k: v for k, v in payload.items() if k in names})
    except TypeError as e:
        raise CheckpointError(f"{path} is a damaged digitlab checkpoint ({e})") from None
    state = checkpoint.state_dict
    if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise CheckpointError(f"{path} is a damaged digitlab checkpoint (its state_dict is not "
                              "a mapping of names to tensors)")
    if DIGEST in payload and payload[DIGEST] != weights_digest(state):
        raise CheckpointError(
            f"{path} is damaged: its weights do not match the sha256 digest written with them "
            "(the file changed on disk or in transfer); replace it with an intact copy"
            + (" (reinstall digitlab)" if path.resolve() == DEFAULT_MODEL.resolve() else "")
        )
    if checkpoint.model_name not in list_models():
        raise CheckpointError(
            f"{path} needs model {checkpoint.model_name!r}, which this digitlab does not have"
        )
    _check_values(path, checkpoint)
    return checkpoint


def _check_values(path: Path, checkpoint: Checkpoint) -> None:
    """Refuse weights that are not finite or do not fit the model arguments, and broken metadata."""
    broken = non_finite_tensors(checkpoint.state_dict)
    if broken:
        raise CheckpointError(
            f"{path} holds weights that are not finite (NaN or inf in {describe_names(broken)}): "
            "the training that wrote it diverged; train again with a lower --lr"
        )
    name, args = checkpoint.model_name, checkpoint.model_args
    try:
        expected = create_model(name, **args).state_dict()
        num_classes = num_classes_of(name, args)
    except (DigitlabError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path} is a damaged digitlab checkpoint (model {name!r} with "
                              f"arguments {args!r}: {e})") from None
    problem = shape_problem(checkpoint.state_dict, expected)
    if problem:
        raise CheckpointError(f"{path}: weights do not fit model {name!r} with arguments "
                              f"{args!r} ({problem}); it is damaged or from another digitlab")
    problem = metadata_problem(classes=checkpoint.classes, num_classes=num_classes,
                               mean=checkpoint.mean, std=checkpoint.std,
                               temperature=checkpoint.temperature)
    if problem:
        raise CheckpointError(f"{path} is a damaged digitlab checkpoint ({problem}); write it "
                              "again with `digitlab train` or `digitlab pack`")


def load_model(
    path: str | os.PathLike[str], device: torch.device | str = "cpu"
) -> tuple[nn.Module, Checkpoint]:
    """Load a checkpoint and rebuild its model in eval mode on `device`."""
    checkpoint = load_checkpoint(path)
    try:
        return checkpoint.build_model(device), checkpoint
    except DigitlabError:
        raise
    except Exception as e:
        raise CheckpointError(f"{path}: cannot rebuild the model ({e})") from None
