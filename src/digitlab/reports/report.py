"""`digitlab report`: everything about one checkpoint in one self-contained HTML page.

The test split is only reported on. Anything fitted is fitted on the validation split, the last
`VALIDATION_SIZE` images of the training split (digitlab.data.splits; 55,000-59,999 of MNIST's
60,000): today that is the calibration temperature. `digitlab train --val-split` (or
`--train-limit 55000`) keeps those images out of training; a model trained on all 60,000 has
seen them, which the report says.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from digitlab.checkpoints.format import Checkpoint
from digitlab.checkpoints.integrity import check_finite_outputs
from digitlab.data import VALIDATION_SIZE, DatasetSpec, load_split, split_validation
from digitlab.data.loader import TensorLoader
from digitlab.devices import resolve_device
from digitlab.errors import ConfigError, DigitlabError
from digitlab.models.temperature import apply_temperature, fit_temperature
from digitlab.reports import calibration
from digitlab.reports.evaluation import EvaluationReport, load_evaluated_model
from digitlab.reports.metrics import most_confused
from digitlab.training.config import DataConfig
from digitlab.training.engine import EvalStats, evaluate
from digitlab.training.packing import read_training_record
from digitlab.training.runs import CONFIG, METRICS, RunRecord, checkpoint_run_record, load_run

logger = logging.getLogger(__name__)

GALLERY_SIZE = 100  # the most confident mistakes shown
CONFUSED_PAIRS = 6
EXAMPLES_PER_PAIR = 8
WILD_FILE = "in_the_wild.json"


@dataclass(frozen=True)
class Example:
    """One test digit: its position in the test split, true and predicted class, confidence."""

    index: int
    true: str
    predicted: str
    confidence: float


@dataclass(frozen=True)
class ConfusedPair:
    true: str
    predicted: str
    count: int
    examples: list[Example]


@dataclass(frozen=True)
class Calibration:
    """Temperature fitted on the validation split; test ECE before and after applying it."""

    temperature: float
    validation_start: int  # first validation image's index in the training split
    validation_size: int
    held_out: bool | None  # the validation images were not trained on (None: not recorded)
    validation_nll: float
    validation_nll_scaled: float
    test_loss_scaled: float
    test: calibration.Reliability
    test_scaled: calibration.Reliability


@dataclass
class Report:
    """The numbers and the digits a report shows; `html.write_html_report` turns it into files."""

    checkpoint: Checkpoint
    evaluation: EvaluationReport
    calibration: Calibration
    mistakes: list[Example]  # the most confident mistakes, at most GALLERY_SIZE
    mistakes_total: int
    pairs: list[ConfusedPair]
    test_images: torch.Tensor  # uint8 N×H×W, for the thumbnails
    run: RunRecord | None  # training curves, when the run folder or checkpoint has them
    training_record: dict[str, Any] | None  # `<checkpoint>.json` written by `digitlab pack`
    wild: dict[str, Any] | None
    wild_source: str | None

    @property
    def path(self) -> Path:
        return Path(self.evaluation.checkpoint)

    def to_dict(self) -> dict[str, Any]:
        cal = self.calibration
        return {
            "checkpoint": str(self.path), "model": self.checkpoint.model_name,
            "dataset": self.checkpoint.dataset, "epoch": self.checkpoint.epoch,
            "stored_temperature": self.checkpoint.temperature,
            "test": self.evaluation.to_dict(),
            "calibration": {**asdict(cal), "bins": calibration.ECE_BINS,
                            "test_ece": cal.test.ece, "test_ece_scaled": cal.test_scaled.ece},
            "mistakes": {"total": self.mistakes_total, "most_confident": [asdict(m) for m in self.mistakes]},
            "confused_pairs": [asdict(p) for p in self.pairs],
            "training": {"curves": self.run is not None, "record": self.training_record},
            "in_the_wild": {"source": self.wild_source, **(self.wild or {})} if self.wild else None,
        }


class _Recorder(nn.Module):
    """Keeps every output of `model`, so engine.evaluate (the one evaluation loop) yields them."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.outputs: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        output = self.model(x)
        self.outputs.append(output.detach().to("cpu", torch.float64))
        return output


def evaluate_outputs(
    model: nn.Module, checkpoint: Checkpoint, images: torch.Tensor, labels: torch.Tensor,
    device: torch.device, batch_size: int = 1000, source: str = "the model",
) -> tuple[EvalStats, torch.Tensor]:
    """engine.evaluate over (images, labels), plus the model's N×C log-probabilities in order."""
    batches = TensorLoader(images, labels, batch_size, mean=checkpoint.mean, std=checkpoint.std,
                           device=device)
    recorder = _Recorder(model)
    stats = evaluate(recorder, batches, len(checkpoint.classes))
    outputs = torch.cat(recorder.outputs)
    # log-probabilities may be -inf (a class ruled out); NaN and +inf are never right
    check_finite_outputs(outputs.clamp(min=torch.finfo(outputs.dtype).min), source)
    return stats, outputs


def find_mistakes(
    log_probs: torch.Tensor, labels: torch.Tensor, classes: list[str], limit: int = GALLERY_SIZE,
    true: int | None = None, predicted: int | None = None,
) -> tuple[list[Example], int]:
    """The misread digits, most confident first (at most `limit`), and how many there are;
    `true` and `predicted` narrow them to one cell of the confusion matrix."""
    confidence, guess = log_probs.exp().max(dim=1)
    wrong = guess != labels
    if true is not None:
        wrong &= labels == true
    if predicted is not None:
        wrong &= guess == predicted
    index = wrong.nonzero().flatten()
    index = index[confidence[index].argsort(descending=True, stable=True)]
    examples = [Example(int(i), classes[int(labels[i])], classes[int(guess[i])], float(confidence[i]))
                for i in index[:limit]]
    return examples, len(index)


def find_confused_pairs(
    confusion: torch.Tensor, log_probs: torch.Tensor, labels: torch.Tensor, classes: list[str],
    top: int = CONFUSED_PAIRS, per_pair: int = EXAMPLES_PER_PAIR,
) -> list[ConfusedPair]:
    """The largest off-diagonal cells of `confusion`, each with its most confident examples."""
    pairs = []
    for cell in most_confused(confusion, classes, top):
        t, p = classes.index(cell["true"]), classes.index(cell["predicted"])
        examples, _ = find_mistakes(log_probs, labels, classes, per_pair, true=t, predicted=p)
        pairs.append(ConfusedPair(cell["true"], cell["predicted"], cell["count"], examples))
    return pairs


def calibrate(
    validation: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor],
    validation_start: int, held_out: bool | None,
) -> Calibration:
    """Fit the temperature on (log-probs, labels) of `validation`; measure it on `test`."""
    (val_logp, val_y), (test_logp, test_y) = validation, test
    temperature = fit_temperature(val_logp, val_y)
    scaled_val, scaled_test = (apply_temperature(x.double(), temperature, log=True)
                               for x in (val_logp, test_logp))
    nll = torch.nn.functional.nll_loss
    return Calibration(
        temperature=temperature, validation_start=validation_start, validation_size=len(val_y),
        held_out=held_out, validation_nll=float(nll(val_logp, val_y)),
        validation_nll_scaled=float(nll(scaled_val, val_y)),
        test_loss_scaled=float(nll(scaled_test, test_y)),
        test=calibration.reliability(test_logp.exp(), test_y),
        test_scaled=calibration.reliability(scaled_test.exp(), test_y),
    )


def find_run(path: Path, checkpoint: Checkpoint) -> RunRecord | None:
    """The run that made the checkpoint: its run folder, else the history the checkpoint holds."""
    if (path.parent / CONFIG).is_file() and (path.parent / METRICS).is_file():
        try:
            return load_run(path.parent)
        except DigitlabError as e:
            logger.warning("ignoring the run folder: %s", e)
    try:
        return checkpoint_run_record(checkpoint, path.parent)
    except DigitlabError as e:
        logger.warning("ignoring the checkpoint's training history: %s", e)
        return None


def validation_held_out(run: RunRecord | None, validation_start: int, split_size: int) -> bool | None:
    """Whether training stopped short of the validation images (None: the run does not say).

    A run trains on the first `train_limit` images of the `split_size` (all when unset), less
    the last `val_split` of those, which it held out to pick best.pt.
    """
    if run is None or run.data is None:
        return None
    limit = run.data.train_limit
    trained = (split_size if limit is None else min(limit, split_size)) - run.data.val_split
    return trained <= validation_start


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DigitlabError(f"cannot read {path} ({e})") from None


def _is_wild(results: Any) -> bool:
    """The shape benchmarks/in_the_wild.py --json writes: {results: {condition: {pipeline:
    {accuracy, n, ...}}}}."""
    conditions = results.get("results") if isinstance(results, dict) else None
    return isinstance(conditions, dict) and all(
        isinstance(pipelines, dict) and all(
            isinstance(scores, dict) and isinstance(scores.get("accuracy"), (int, float))
            for scores in pipelines.values()
        )
        for pipelines in conditions.values()
    )


def load_wild(path: Path | None, checkpoint_path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """Results of benchmarks/in_the_wild.py --json: from `path`, else in_the_wild.json beside
    the checkpoint, else none. A bad `path` is an error; a bad file found beside, a warning."""
    explicit = path is not None
    path = path if path is not None else checkpoint_path.parent / WILD_FILE
    if not path.is_file():
        if explicit:
            raise DigitlabError(f"--wild {path} does not exist; write it with "
                                f"`python benchmarks/in_the_wild.py --json {path}`")
        return None, None
    try:
        results = _read_json(path)
        if not _is_wild(results):
            raise DigitlabError(f"{path} is not the JSON of benchmarks/in_the_wild.py --json")
    except DigitlabError as e:
        if explicit:
            raise
        logger.warning("ignoring %s", e)
        return None, None
    return results, str(path)


def validation_split(
    data: DataConfig, spec: DatasetSpec, size: int = VALIDATION_SIZE
) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """The last `size` images of the training split: images, labels, first index, split size."""
    train_x, train_y = load_split(data.root, train=True, spec=spec)
    if not 0 < size < len(train_x):
        raise ConfigError(f"the validation split must have between 1 and {len(train_x) - 1} "
                          f"images (got {size})")
    _, _, val = split_validation(train_x, train_y, size)
    assert val is not None  # size > 0
    return val[0], val[1], len(train_x) - size, len(train_x)


def build_report(
    path: str | os.PathLike[str], data: DataConfig, *, device: str = "auto",
    wild: str | os.PathLike[str] | None = None, validation_size: int = VALIDATION_SIZE,
    gallery_size: int = GALLERY_SIZE, batch_size: int = 1000,
) -> Report:
    """Evaluate `path` on the test split, calibrate it on the validation split, gather the rest."""
    path, torch_device = Path(path), resolve_device(device)
    model, checkpoint, spec = load_evaluated_model(path, torch_device)
    wild_results, wild_source = load_wild(Path(wild) if wild is not None else None, path)
    test_x, test_y = load_split(data.root, train=False, spec=spec, limit=data.test_limit)
    val_x, val_y, start, split_size = validation_split(data, spec, validation_size)
    stats, test_logp = evaluate_outputs(model, checkpoint, test_x, test_y, torch_device, batch_size,
                                        source=str(path))
    _, val_logp = evaluate_outputs(model, checkpoint, val_x, val_y, torch_device, batch_size,
                                  source=str(path))
    run = find_run(path, checkpoint)
    classes = list(checkpoint.classes)
    mistakes, total = find_mistakes(test_logp, test_y, classes, gallery_size)
    return Report(
        checkpoint=checkpoint,
        evaluation=EvaluationReport(checkpoint=str(path), stats=stats, classes=classes),
        calibration=calibrate((val_logp, val_y), (test_logp, test_y), start,
                              validation_held_out(run, start, split_size)),
        mistakes=mistakes, mistakes_total=total,
        pairs=find_confused_pairs(stats.confusion, test_logp, test_y, classes),
        test_images=test_x, run=run, training_record=read_training_record(path),
        wild=wild_results, wild_source=wild_source,
    )
