"""`--amp`: mixed precision on CUDA (bf16 autocast, fp16 with a loss scaler), refused elsewhere."""

import pytest
import torch

from digitlab.cli import main
from digitlab.errors import ConfigError
from digitlab.models import create_model
from digitlab.training.engine import train_one_epoch
from digitlab.training.precision import MixedPrecision, mixed_precision

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="needs a CUDA GPU: --amp is refused on CPU")


def test_amp_is_refused_on_cpu_in_one_line_before_any_data_is_read(tmp_path, capsys):
    code = main(["train", "--amp", "--device", "cpu", "--data-dir", str(tmp_path / "no-data"),
                 "--out", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("digitlab: error")] == [
        "digitlab: error: --amp bf16 needs a CUDA GPU; on cpu train without --amp (float32 is "
        "the fast path there)"]
    assert not (tmp_path / "run" / "last.pt").exists()


def test_off_means_float32_and_unknown_modes_are_refused():
    assert mixed_precision("off", torch.device("cpu")) is None
    with pytest.raises(ConfigError, match="--amp must be bf16 or fp16"):
        mixed_precision("fp8", torch.device("cuda"))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_the_step_runs_under_autocast_and_learns(dtype):
    # The mechanics are the device's own autocast; CPU autocast runs them here, CUDA in CI's GPU job.
    scaler = torch.amp.GradScaler("cpu") if dtype == torch.float16 else None
    precision = MixedPrecision("cpu", dtype, scaler)
    with precision.autocast():
        assert torch.nn.Linear(4, 2)(torch.randn(3, 4)).dtype == dtype
    torch.manual_seed(0)
    model = create_model("mlp")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    images, labels = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
    first = train_one_epoch(model, [(images, labels)], optimizer, progress=False, precision=precision)
    for _ in range(20):
        last = train_one_epoch(model, [(images, labels)], optimizer, progress=False,
                               precision=precision)
    assert last.loss < 0.1 * first.loss
    assert next(model.parameters()).dtype == torch.float32  # the weights stay float32


def test_the_fp16_loss_scale_travels_in_the_checkpoint_state():
    precision = MixedPrecision("cpu", torch.float16, torch.amp.GradScaler("cpu", init_scale=1024.0))
    model = create_model("mlp")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    train_one_epoch(model, [(torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,)))] * 3,
                    optimizer, progress=False, precision=precision)
    saved = precision.state_dict()
    restored = MixedPrecision("cpu", torch.float16, torch.amp.GradScaler("cpu"))
    restored.load_state_dict(saved)
    assert restored.state_dict() == saved and saved["_growth_tracker"] == 3


@needs_cuda
@pytest.mark.parametrize("mode", ["bf16", "fp16"])
def test_a_tiny_run_with_amp_on_cuda_learns_and_resumes(mode, mnist_root, tmp_path):
    from digitlab.checkpoints.format import load_checkpoint

    if mode == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    flags = ["train", "--recipe", "tutorial-mlp", "--amp", mode, "--train-limit", "2000",
             "--test-limit", "1000", "--device", "cuda", "--no-progress",
             "--data-dir", str(mnist_root)]
    assert main([*flags, "--epochs", "2", "--out", str(tmp_path / "straight")]) == 0
    assert main([*flags, "--epochs", "1", "--out", str(tmp_path / "run")]) == 0
    assert main(["train", "--resume", str(tmp_path / "run"), "--epochs", "2", "--no-progress"]) == 0
    straight = load_checkpoint(tmp_path / "straight" / "last.pt")
    resumed = load_checkpoint(tmp_path / "run" / "last.pt")
    assert straight.config["amp"] == mode and straight.metrics["accuracy"] > 0.7  # chance: 0.1
    assert (straight.scaler_state is not None) == (mode == "fp16")
    for name, tensor in straight.state_dict.items():  # same schedule, same loss scale
        torch.testing.assert_close(resumed.state_dict[name], tensor, rtol=1e-3, atol=1e-3)
