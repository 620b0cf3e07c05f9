"""Packing a run for release: a slim checkpoint and its training record beside it."""

import torch

from digitlab.checkpoints.format import load_checkpoint, load_model, save_checkpoint
from digitlab.training.packing import pack_checkpoint
from digitlab.training.runs import EpochRecord, History
from tests.checkpoints.test_format import make_checkpoint


def test_pack_writes_a_slim_checkpoint_and_a_training_record(tmp_path):
    model, checkpoint = make_checkpoint()
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(2, 1, 28, 28)).sum().backward()
    optimizer.step()  # Adam state doubles the size of a checkpoint
    checkpoint.optimizer_state = optimizer.state_dict()
    checkpoint.config = {"recipe": "tutorial", "seed": 1}
    checkpoint.metrics["history"] = History(epochs=[
        EpochRecord(epoch=e, samples=100 * e, train_loss=0.5, test_loss=0.4, accuracy=0.99, lr=1.0,
                    seconds=seconds, images_per_s=40.0) for e, seconds in ((1, 2.5), (2, 3.0))
    ]).to_dict()
    save_checkpoint(tmp_path / "full.pt", checkpoint)
    record = pack_checkpoint(tmp_path / "full.pt", tmp_path / "slim.pt")
    assert (tmp_path / "slim.pt").stat().st_size < 0.6 * (tmp_path / "full.pt").stat().st_size
    slim = load_checkpoint(tmp_path / "slim.pt")
    assert slim.optimizer_state is None and "history" not in slim.metrics
    assert record["recipe"] == "tutorial" and record["seed"] == 1 and record["train_seconds"] == 5.5
    assert record["test_accuracy"] == 0.99
    x = torch.randn(3, 1, 28, 28)
    assert torch.equal(model.eval()(x), load_model(tmp_path / "slim.pt")[0](x))
