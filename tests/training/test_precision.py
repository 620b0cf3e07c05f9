"""`--amp`: mixed precision: bf16 autocast on CUDA and on CPUs with bfloat16 instructions, fp16
with a loss scaler on CUDA; refused in one line where the device cannot run it fast."""

import pytest
import torch

from digitlab.cli import main
from digitlab.devices import cpu_has_bf16
from digitlab.errors import ConfigError
from digitlab.models import create_model
from digitlab.training import precision
from digitlab.training.engine import train_one_epoch
from digitlab.training.precision import MixedPrecision, mixed_precision

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
needs_cpu_bf16 = pytest.mark.skipif(not cpu_has_bf16(),
                                    reason="this CPU has no bfloat16 instructions (AVX512-BF16, AMX)")


def test_bf16_is_refused_on_a_cpu_without_bf16_in_one_line_before_any_data_is_read(
        tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)
    code = main(["train", "--amp", "--device", "cpu", "--data-dir", str(tmp_path / "no-data"),
                 "--out", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("digitlab: error")] == [
        "digitlab: error: --amp bf16 needs bfloat16 instructions (AVX512-BF16 or AMX) on the CPU, "
        "and this CPU has none: train without --amp (float32 is the fast path here)"]
    assert not (tmp_path / "run" / "last.pt").exists()


def test_fp16_is_refused_on_the_cpu_and_auto_falls_back_to_float32(monkeypatch):
    with pytest.raises(ConfigError, match="--amp fp16 needs a CUDA GPU; on the CPU use --amp bf16"):
        mixed_precision("fp16", torch.device("cpu"))
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)
    assert mixed_precision("auto", torch.device("cpu")) is None
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)
    assert mixed_precision("auto", torch.device("cpu")).dtype == torch.bfloat16


def test_off_means_float32_and_unknown_modes_are_refused():
    assert mixed_precision("off", torch.device("cpu")) is None
    with pytest.raises(ConfigError, match="--amp must be off, auto, bf16 or fp16"):
        mixed_precision("fp8", torch.device("cuda"))


@needs_cpu_bf16
def test_amp_on_this_cpu_trains_a_few_batches_in_bf16_with_float32_weights(mnist_root, tmp_path):
    from digitlab.checkpoints.format import load_checkpoint

    flags = ["train", "--recipe", "fast", "--amp", "bf16", "--device", "cpu", "--train-limit",
             "3000", "--test-limit", "500", "--no-progress", "--data-dir", str(mnist_root)]
    assert main([*flags, "--epochs", "1", "--out", str(tmp_path / "run")]) == 0
    saved = load_checkpoint(tmp_path / "run" / "last.pt")
    assert saved.config["amp"] == "bf16" and saved.scaler_state is None
    assert saved.metrics["accuracy"] > 0.5  # chance: 0.1
    assert all(t.dtype == torch.float32 for t in saved.state_dict.values() if t.is_floating_point())
    # and the step itself runs in bf16: a convolution under the run's autocast gives bf16
    with mixed_precision("bf16", torch.device("cpu")).autocast():
        assert torch.nn.Conv2d(1, 2, 3)(torch.randn(1, 1, 8, 8)).dtype == torch.bfloat16


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
