import json
import shutil
from pathlib import Path

import pytest

from digitlab.errors import DigitlabError
from digitlab.training.config import DataConfig, TrainConfig
from digitlab.training.runs import (
    CONFIG,
    METRICS,
    EpochRecord,
    History,
    RunRecord,
    TrainPoint,
    load_run,
    save_run,
)

# A run folder as digitlab 0.1 wrote it (tutorial-mlp, 2 epochs, 300 images less a 100-image
# validation split), before the run folder had a type.
TODAY = Path(__file__).parent / "fixtures" / "run-v0.1"


def files_of(folder):
    return {name: json.loads((folder / name).read_text()) for name in (CONFIG, METRICS)}


def epoch(n, **kw):
    values = dict(epoch=n, samples=100 * n, train_loss=1.0 / n, test_loss=0.5 / n, accuracy=0.8,
                  lr=1.0, seconds=0.25, images_per_s=400.0)
    return EpochRecord(**{**values, **kw})


def record(path, **kw):
    history = History(train=[TrainPoint(1, 50, 2.0), TrainPoint(1, 100, 1.5)], epochs=[epoch(1)])
    values = dict(path=path, config=TrainConfig(recipe="tutorial", model="cnn", epochs=1),
                  data=DataConfig(root=Path("/data"), train_limit=100), history=history,
                  device="cpu", parameters=1234, versions={"digitlab": "0.1.0"},
                  machine={"platform": "test"}, started="2026-11-30T12:00:00+0000")
    return RunRecord(**{**values, **kw})


def test_a_run_folder_written_before_the_record_existed_reads_back():
    run = load_run(TODAY)
    assert run.path == TODAY and run.label == "run-v0.1 (mlp)"
    assert run.config.recipe == "tutorial-mlp" and run.config.batch_size == 100
    assert run.data == DataConfig(root=Path("/data/digitlab"), train_limit=300, test_limit=200,
                                  val_split=100)
    assert run.device == "cpu" and run.parameters == 101_770 and run.versions["digitlab"] == "0.1.0"
    assert run.started == "2026-11-30T14:27:23+0000" and run.rank_checksums == ()
    assert run.history.train[2] == TrainPoint(epoch=2, samples=300, loss=1.3927772045135498)
    last = run.history.epochs[-1]
    assert (last.epoch, last.samples, last.accuracy, last.lr, last.val_accuracy) == (2, 400, 0.615, 0.7, 0.68)
    assert run.accuracy == 0.615 and run.best_score == 0.68  # best.pt went by validation


def test_the_record_writes_todays_files_key_for_key(tmp_path):
    run = load_run(TODAY)
    assert run.to_dict() == files_of(TODAY)
    for name, values in run.to_dict().items():  # same keys in the same order, as on disk
        assert json.dumps(values) == json.dumps(files_of(TODAY)[name])
    copy = RunRecord.from_dict(run.to_dict(), tmp_path)
    save_run(copy)
    assert files_of(tmp_path) == files_of(TODAY) and load_run(tmp_path) == copy


def test_a_record_round_trips_through_its_folder(tmp_path):
    original = record(tmp_path)
    save_run(original)
    assert load_run(tmp_path) == original
    assert load_run(tmp_path / METRICS) == original  # the metrics.json inside a folder names it
    saved = files_of(tmp_path)
    assert "val_accuracy" not in saved[METRICS]["epochs"][0]  # no split held out: no such keys
    assert saved[CONFIG]["data"]["root"] == "/data" and saved[CONFIG]["device_resolved"] == "cpu"
    assert saved[METRICS]["epochs_done"] == 1 and saved[METRICS]["accuracy"] == 0.8
    assert "world_size" not in saved[METRICS]


def test_real_folder_scores_round_trip_and_pick_best_pt_when_asked(tmp_path):
    judged = [epoch(1, accuracy=0.9, real={"mine": 0.5, "theirs": 0.7}, real_mean=0.6),
              epoch(2, accuracy=0.8, real={"mine": 0.8, "theirs": 0.8}, real_mean=0.8)]
    data = DataConfig(root=Path("/data"), val_real=("/real/mine", "/real/theirs"), select_by="real")
    original = record(tmp_path, data=data, history=History(epochs=judged))
    save_run(original)
    assert load_run(tmp_path) == original
    saved = files_of(tmp_path)
    assert saved[METRICS]["epochs"][1]["real"] == {"mine": 0.8, "theirs": 0.8}
    assert saved[CONFIG]["data"]["val_real"] == ["/real/mine", "/real/theirs"]
    assert original.best_score == 0.8 and original.history.best_score("test") == 0.9
    assert [e.selection_score() for e in judged] == [0.9, 0.8]  # the default: test, no split
    with pytest.raises(ValueError, match="no real accuracy"):
        epoch(1).selection_score("real")
    assert "real" not in record(tmp_path).to_dict()[METRICS]["epochs"][0]  # unjudged: no keys


def test_a_torchrun_job_records_every_ranks_weights(tmp_path):
    save_run(record(tmp_path, rank_checksums=(1.5, 1.5)))
    metrics = files_of(tmp_path)[METRICS]
    assert (metrics["world_size"], metrics["rank_checksums"], metrics["ranks_agree"]) == (2, [1.5, 1.5], True)
    assert load_run(tmp_path).rank_checksums == (1.5, 1.5)
    assert not record(tmp_path, rank_checksums=(1.5, 2.5)).ranks_agree


def test_a_run_without_a_finished_epoch_reads_only_when_asked(tmp_path):
    save_run(record(tmp_path), CONFIG)
    with pytest.raises(DigitlabError, match=r"is not a run folder \(no metrics.json\)"):
        load_run(tmp_path)
    assert load_run(tmp_path, partial=True).history == History()
    (tmp_path / METRICS).write_text("{not json")
    with pytest.raises(DigitlabError, match="damaged run file"):
        load_run(tmp_path)
    assert load_run(tmp_path, partial=True).history == History()  # last.pt holds the history


@pytest.mark.parametrize("damage", [
    lambda files: files[CONFIG].pop("model"),
    lambda files: files[CONFIG]["data"].pop("root"),
    lambda files: files[METRICS]["epochs"][0].pop("accuracy"),
    lambda files: files[METRICS]["train"].append(3),
])
def test_a_damaged_run_file_is_one_clear_error(tmp_path, damage):
    shutil.copytree(TODAY, tmp_path / "run")
    files = files_of(tmp_path / "run")
    damage(files)
    for name, values in files.items():
        (tmp_path / "run" / name).write_text(json.dumps(values))
    with pytest.raises(DigitlabError, match="damaged run file"):
        load_run(tmp_path / "run")


def test_a_folder_that_is_no_run_says_so(tmp_path):
    with pytest.raises(DigitlabError, match=r"is not a run folder \(no config.json\)"):
        load_run(tmp_path)


def test_the_checkpoint_keeps_the_history_and_remembers_its_run(tmp_path):
    import torch

    from digitlab.checkpoints.format import DEFAULT_MODEL, Checkpoint, load_checkpoint
    from digitlab.training.packing import read_training_record
    from digitlab.training.runs import checkpoint_history, checkpoint_run_record

    run = record(tmp_path)
    checkpoint = Checkpoint(model_name="mlp", model_args={}, state_dict={"w": torch.zeros(1)},
                            config=run.config.to_dict(), metrics={"history": run.history.to_dict()})
    assert checkpoint_history(checkpoint) == run.history
    assert checkpoint_run_record(checkpoint, tmp_path) == RunRecord(path=tmp_path, config=run.config,
                                                        history=run.history)
    shipped = load_checkpoint(DEFAULT_MODEL)  # packed: no history, a training record beside it
    assert checkpoint_run_record(shipped, DEFAULT_MODEL.parent) is None
    assert read_training_record(DEFAULT_MODEL)["recipe"] == "robust"
