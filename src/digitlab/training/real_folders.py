"""Real labelled digits as the judge of a run, never its teacher (`digitlab train --val-real DIR`).

Each folder (reading.labelled: names "<digit>_...") is read once, before the first epoch,
through the preprocessing the Predictor reads a single digit with (the data set's pipeline,
`robust` for digits), into normalised tensors on the run's device; every epoch the one
`evaluate()` scores the model on them. Where the robust pipeline hands the model several views
of a picture, the model's answers choose one exactly as the Predictor's do
(reading.robust.views.choose_view), and a picture where no ink is found counts as misread (the
Predictor reads no digit there), so a folder's accuracy is what `digitlab bench wild --real DIR`
says of that epoch's weights. These pictures only ever go through `evaluate()`.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from digitlab.data import DatasetSpec
from digitlab.data.normalise import normalise
from digitlab.errors import ConfigError
from digitlab.training.engine import evaluate

logger = logging.getLogger(__name__)

Batch = tuple[torch.Tensor, torch.Tensor]  # views (N×1×28×28, or N×V×1×28×28) and labels


@dataclass(frozen=True)
class RealFolder:
    """One --val-real folder, read and preprocessed once: its batches wait on the device."""

    name: str  # the folder's name: its key in metrics.json
    batches: list[Batch]
    pictures: int
    no_ink: int  # pictures where no ink was found: not in `batches`, always misread


class _ViewVote(nn.Module):
    """`model` reading a batch of N pictures × V views as the Predictor does: every view is
    classified, and each picture answers with the view `choose_view` picks."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:  # one view per picture
            return self.model(x)
        n, v = x.shape[:2]
        log_probs = self.model(x.flatten(0, 1)).reshape(n, v, -1)
        from digitlab.reading.robust.views import choose_view  # here: reading/ pulls in PIL, scipy

        names = [str(i) for i in range(v)]  # choose_view names views only for its record
        chosen = [choose_view(names, views.exp())[0] for views in log_probs.float()]
        return log_probs[torch.arange(n), torch.tensor(chosen, device=log_probs.device)]


def load_real_folders(folders: Sequence[str], spec: DatasetSpec, mean: float, std: float,
                      batch_size: int, device: torch.device) -> list[RealFolder]:
    """Each folder's pictures preprocessed into normalised batches on `device`; ConfigError
    for a data set of other things than digits, a missing folder or one with no labelled
    picture (all before any training)."""
    if folders and not spec.digits:
        raise ConfigError(f"--val-real scores real digits; {spec.name} is not a digit data set")
    loaded = []
    for folder in folders:
        start = time.perf_counter()
        real = _load_folder(Path(folder), spec, mean, std, batch_size, device)
        logger.info("--val-real %s: %d labelled pictures%s, preprocessed once in %.1f s", folder,
                    real.pictures, f" ({real.no_ink} without ink)" if real.no_ink else "",
                    time.perf_counter() - start)
        loaded.append(real)
    return loaded


def _load_folder(folder: Path, spec: DatasetSpec, mean: float, std: float, batch_size: int,
                 device: torch.device) -> RealFolder:
    from digitlab.reading.images import load_image  # here: only a run with --val-real reads pictures
    from digitlab.reading.labelled import load_labelled
    from digitlab.reading.pipelines import preprocess

    items = load_labelled(folder)
    if not items:
        raise ConfigError(f"--val-real {folder} holds no labelled pictures (file names start with "
                          "the digit and `_`, e.g. 7_mine.png)")
    by_views: dict[int, list[tuple[torch.Tensor, int]]] = defaultdict(list)
    no_ink = 0
    for item in items:
        if item.label not in spec.classes:
            raise ConfigError(f"--val-real {item.path}: {item.label} is not one of the classes")
        prepared = preprocess(load_image(item.path), spec.pipeline)
        if not prepared.has_ink:
            no_ink += 1
            continue
        views = torch.stack([prepared.pixels, *prepared.alternatives.values()])
        by_views[len(views)].append((views, spec.classes.index(item.label)))
    batches = []
    for count, group in sorted(by_views.items()):
        per_batch = max(batch_size // count, 1)
        for i in range(0, len(group), per_batch):
            views = torch.stack([v for v, _ in group[i : i + per_batch]]).unsqueeze(2)
            labels = torch.tensor([label for _, label in group[i : i + per_batch]])
            x = normalise(views.to(device), mean, std)
            batches.append((x if count > 1 else x.squeeze(1), labels.to(device)))
    return RealFolder(folder.name, batches, len(items), no_ink)


def score_real_folders(model: nn.Module, folders: Sequence[RealFolder], classes: int,
                       max_batches: int | None = None) -> dict[str, float]:
    """Accuracy of `model` on each folder, by name (the one evaluation loop; pictures without
    ink count as misread)."""
    voting = _ViewVote(model)
    scores = {}
    for folder in folders:
        result = evaluate(voting, folder.batches, classes, max_batches=max_batches)
        scores[folder.name] = result.correct / (result.total + folder.no_ink)
    return scores
