import json
import pickle

import pytest
import torch

from digitlab.checkpoints.format import Checkpoint, load_checkpoint, load_model, save_checkpoint
from digitlab.errors import CheckpointError
from digitlab.models import create_model


def make_checkpoint(name="cnn"):
    torch.manual_seed(0)
    model = create_model(name)
    return model.eval(), Checkpoint(model_name=name, model_args={"num_classes": 10},
                                    state_dict=model.state_dict(), epoch=3,
                                    metrics={"accuracy": 0.99})


def test_round_trip_gives_identical_logits(tmp_path):
    model, checkpoint = make_checkpoint()
    save_checkpoint(tmp_path / "c.pt", checkpoint)
    payload = torch.load(tmp_path / "c.pt", weights_only=True)  # plain types only
    assert payload["format_version"] == 1 and payload["model_name"] == "cnn"
    loaded, again = load_model(tmp_path / "c.pt")
    x = torch.randn(4, 1, 28, 28)
    assert torch.equal(model(x), loaded(x))
    assert again.epoch == 3 and again.metrics["accuracy"] == 0.99 and again.mean == 0.1307
    assert not [p.name for p in tmp_path.iterdir() if p.name != "c.pt"]  # no temp files left


def test_tutorial_state_dict_is_recognised(tmp_path):
    model, _ = make_checkpoint()
    torch.save(model.state_dict(), tmp_path / "mnist_cnn.pt")  # what the tutorial saves
    loaded, checkpoint = load_model(tmp_path / "mnist_cnn.pt")
    assert checkpoint.model_name == "cnn" and checkpoint.origin == "tutorial state_dict"
    x = torch.randn(2, 1, 28, 28)
    assert torch.equal(model(x), loaded(x))


class Evil:
    def __reduce__(self):
        return (print, ("arbitrary code ran",))


@pytest.mark.parametrize(
    "write, message",
    [
        (lambda p: p.write_text("hello"), "not a loadable PyTorch checkpoint"),
        (lambda p: p.write_bytes(b""), "not a loadable PyTorch checkpoint"),
        (lambda p: p.write_bytes(pickle.dumps(Evil())), "not a loadable PyTorch checkpoint"),
        (lambda p: torch.save({"weight": torch.zeros(3)}, p), "not a digitlab checkpoint"),
        (lambda p: torch.save([1, 2, 3], p), "holds a list"),
        (lambda p: torch.save({"format": "digitlab-checkpoint", "format_version": 99}, p),
         "upgrade digitlab"),
    ],
)
def test_foreign_files_are_rejected_clearly(tmp_path, write, message, capsys):
    path = tmp_path / "foreign.pt"
    write(path)
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)
    assert "arbitrary code ran" not in capsys.readouterr().out


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")


def test_weights_that_do_not_fit_are_rejected(tmp_path):
    _, checkpoint = make_checkpoint()
    checkpoint.model_name = "mlp"
    save_checkpoint(tmp_path / "c.pt", checkpoint)
    with pytest.raises(CheckpointError, match="do not fit model 'mlp'"):
        load_model(tmp_path / "c.pt")


def test_temperature_travels_and_old_checkpoints_read_as_uncalibrated(tmp_path):
    import dataclasses

    _, checkpoint = make_checkpoint("mlp")
    save_checkpoint(tmp_path / "t.pt", dataclasses.replace(checkpoint, temperature=0.4))
    assert load_checkpoint(tmp_path / "t.pt").temperature == 0.4
    payload = torch.load(tmp_path / "t.pt", weights_only=True)
    del payload["temperature"]  # written before calibration existed
    torch.save(payload, tmp_path / "old.pt")
    assert load_checkpoint(tmp_path / "old.pt").temperature == 1.0
    payload["temperature"] = -1.0
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="temperature -1.0 is not a positive number"):
        load_checkpoint(tmp_path / "bad.pt")


def test_every_checkpoint_written_carries_the_digest_of_its_weights(tmp_path):
    from digitlab.checkpoints.integrity import weights_digest

    _, checkpoint = make_checkpoint()
    save_checkpoint(tmp_path / "c.pt", checkpoint)
    payload = torch.load(tmp_path / "c.pt", weights_only=True)
    assert payload["weights_sha256"] == weights_digest(checkpoint.state_dict)


def test_a_checkpoint_whose_weights_changed_after_writing_is_refused(tmp_path):
    _, checkpoint = make_checkpoint("mlp")
    save_checkpoint(tmp_path / "c.pt", checkpoint)
    payload = torch.load(tmp_path / "c.pt", weights_only=True)
    payload["state_dict"]["fc2.bias"][4] += 1e-3  # still finite, still the right shape
    torch.save(payload, tmp_path / "c.pt")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "c.pt")
    assert str(info.value) == (
        f"{tmp_path / 'c.pt'} is damaged: its weights do not match the sha256 digest written "
        "with them (the file changed on disk or in transfer); replace it with an intact copy")


def test_the_shipped_model_carries_a_digest_that_verifies():
    from digitlab.checkpoints.format import DEFAULT_MODEL
    from digitlab.checkpoints.integrity import weights_digest

    payload = torch.load(DEFAULT_MODEL, weights_only=True)
    assert payload["weights_sha256"] == weights_digest(payload["state_dict"])
    checkpoint = load_checkpoint(DEFAULT_MODEL)  # verified on the way in
    record = json.loads(DEFAULT_MODEL.with_suffix(".json").read_text())  # its training record
    assert checkpoint.temperature == pytest.approx(record["calibration"]["temperature"])
    assert checkpoint.model_name == record["model"] == "bncnn"


def test_weights_holding_nan_are_never_written(tmp_path):
    import math

    _, checkpoint = make_checkpoint("mlp")
    checkpoint.state_dict["fc1.weight"][0, 0] = math.nan
    with pytest.raises(CheckpointError, match=r"refusing to write .*'fc1.weight' hold NaN or inf"):
        save_checkpoint(tmp_path / "c.pt", checkpoint)
    assert list(tmp_path.iterdir()) == []


def test_a_tutorial_state_dict_has_no_digest_but_must_be_finite(tmp_path):
    import math

    model, _ = make_checkpoint()
    state = model.state_dict()
    torch.save(state, tmp_path / "mnist_cnn.pt")
    assert load_checkpoint(tmp_path / "mnist_cnn.pt").origin == "tutorial state_dict"
    state["fc2.bias"][1] = math.inf
    torch.save(state, tmp_path / "mnist_cnn.pt")
    with pytest.raises(CheckpointError, match=r"not finite \(NaN or inf in 'fc2.bias'\)"):
        load_checkpoint(tmp_path / "mnist_cnn.pt")


@pytest.mark.parametrize("field, value, message", [
    ("classes", ["a"], "classes must be 10 distinct names"),
    ("mean", "x", "mean 'x' is not a finite number"),
    ("std", 0, "std 0 is not a finite positive number"),
    ("model_args", {"num_classes": 10, "hidden": [64]}, "weights do not fit model 'mlp'"),
    ("state_dict", [1, 2], "its state_dict is not a mapping of names to tensors"),
])
def test_damaged_metadata_is_refused_in_one_line(tmp_path, field, value, message):
    _, checkpoint = make_checkpoint("mlp")
    save_checkpoint(tmp_path / "c.pt", checkpoint)
    payload = torch.load(tmp_path / "c.pt", weights_only=True)
    payload[field] = value  # the weights and their digest untouched
    torch.save(payload, tmp_path / "c.pt")
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint(tmp_path / "c.pt")
    assert "\n" not in str(info.value) and str(tmp_path / "c.pt") in str(info.value)
