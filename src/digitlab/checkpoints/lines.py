"""The line reader's checkpoint: plain types only, so `torch.load(weights_only=True)` reads it.

It holds the net's arguments (the net is rebuilt from them alone), its weights with their
sha256 digest (checked on load: a changed file is refused, not read as another model), the
last epoch's metrics and, in `last.pt` only, what `--resume` needs.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from digitlab.checkpoints.integrity import non_finite_tensors, weights_digest
from digitlab.errors import CheckpointError
from digitlab.files import atomic_path

FORMAT = "digitlab-line-reader"
FORMAT_VERSION = 1
MODEL = "linenet"


@dataclass
class LineCheckpoint:
    model_args: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    metrics: dict[str, float] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)  # optimiser, scheduler, epoch, history

    def build_model(self) -> torch.nn.Module:
        from digitlab.models.linenet import LineNet

        try:
            model = LineNet(**self.model_args)
            model.load_state_dict(self.state_dict)
        except (TypeError, ValueError, RuntimeError) as e:
            raise CheckpointError(
                f"the line reader's weights do not fit its settings ({str(e)[:120]})") from None
        return model.eval()


def save_line_checkpoint(path: str | os.PathLike[str], checkpoint: LineCheckpoint) -> None:
    """Write `checkpoint` atomically with its digest; NaN or inf weights are refused."""
    state = {k: v.detach().cpu() for k, v in checkpoint.state_dict.items()}
    if non_finite_tensors(state):
        raise CheckpointError(f"refusing to write {path}: the line reader's weights hold NaN or inf")
    payload = {**dataclasses.asdict(checkpoint), "state_dict": state, "format": FORMAT,
               "format_version": FORMAT_VERSION, "model": MODEL, "digest": weights_digest(state)}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def is_line_checkpoint(payload: Any) -> bool:
    return isinstance(payload, dict) and payload.get("format") == FORMAT


def load_line_checkpoint(path: str | os.PathLike[str]) -> LineCheckpoint:
    """Read a line reader's checkpoint, or say in one line why it is not one."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"line reader {path} does not exist; train one with "
                              "`digitlab train --recipe numbers` or run `make number-model`")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for foreign files; all mean the same here
        raise CheckpointError(f"{path} is not a loadable PyTorch checkpoint ({str(e)[:80]!r}); "
                              "pass a line reader written by `digitlab train --recipe numbers`") from None
    if not is_line_checkpoint(payload):
        raise CheckpointError(f"{path} is not a line reader's checkpoint; pass one written by "
                              "`digitlab train --recipe numbers`")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} has line-reader format {payload.get('format_version')!r}; "
                              f"this digitlab reads {FORMAT_VERSION}")
    state = payload.get("state_dict")
    if not isinstance(state, dict) or payload.get("digest") != weights_digest(state):
        raise CheckpointError(f"{path} is damaged: its weights do not match the sha256 digest "
                              "written with them; train or download it again")
    if non_finite_tensors(state):
        raise CheckpointError(f"{path} holds weights that are not finite (NaN or inf); train it again")
    return LineCheckpoint(model_args=dict(payload.get("model_args") or {}), state_dict=state,
                          metrics=dict(payload.get("metrics") or {}),
                          training=dict(payload.get("training") or {}))


def pack_line_checkpoint(source: str | os.PathLike[str], out: str | os.PathLike[str]) -> dict[str, Any]:
    """A slim copy of a line reader for reading only (no optimiser state) at `out`, and its
    training record beside it (`out` with .json: each epoch's figures, for the README)."""
    import json

    checkpoint = load_line_checkpoint(source)
    history = checkpoint.training.get("history") or [checkpoint.metrics]
    save_line_checkpoint(out, dataclasses.replace(checkpoint, training={}))
    record = {"source": str(source), "bytes": Path(out).stat().st_size, "epochs": history,
              "seconds": sum(float(e.get("seconds", 0)) for e in history)}
    with atomic_path(Path(out).with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n")
    return record


def holds_line_reader(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is a line reader's checkpoint (False for anything else, readable or not)."""
    try:
        return is_line_checkpoint(torch.load(path, map_location="cpu", weights_only=True))
    except Exception:  # not ours to explain: the caller's loader says what is wrong
        return False
