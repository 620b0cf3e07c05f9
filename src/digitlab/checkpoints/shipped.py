"""The model shipped inside the package (`default.pt`) and its training record (`default.json`),
and what kind of model file a path holds.

Wherever a command or the Python API takes a checkpoint, `default` (or `shipped`) names this
model. Nothing here imports torch: the command-line parser uses it.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

DEFAULT_MODEL = Path(__file__).parents[1] / "weights" / "default.pt"
SHIPPED_NAMES = ("default", "shipped")  # what a user may type for the shipped model


def is_shipped(path: str | os.PathLike[str] | None) -> bool:
    """Whether `path` means the shipped model: None, one of SHIPPED_NAMES, or its file."""
    if path is None or str(path) in SHIPPED_NAMES:
        return True
    return Path(path).is_file() and Path(path).resolve() == DEFAULT_MODEL.resolve()


def model_path(path: str | os.PathLike[str] | None) -> Path:
    """The file `path` names: the shipped model for None, `default` or `shipped` (a name, even
    where a file of that name exists, so that a command means the same in every folder)."""
    if path is None or str(path) in SHIPPED_NAMES:
        return DEFAULT_MODEL
    return Path(path)


def model_format(path: str | os.PathLike[str]) -> str:
    """"onnx", "torchscript" or "checkpoint" (anything else, for torch.load to judge), from the
    file's first bytes, never from its name."""
    path = model_path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(4)
        if head.startswith(b"PK"):  # torch.save and torch.jit.save both write zip archives
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
            # TorchScript keeps its code and constants beside the data; a checkpoint has data.pkl only
            scripted = any(n.endswith("/constants.pkl") or "/code/" in n for n in names)
            return "torchscript" if scripted else "checkpoint"
    except (OSError, zipfile.BadZipFile):
        return "checkpoint"
    # an ONNX ModelProto starts with field 1 (ir_version, a varint): tag byte 0x08; a pickle
    # (torch.save's legacy format) starts with 0x80
    return "onnx" if head[:1] == b"\x08" else "checkpoint"
