import subprocess
import sys

import pytest
import torch

from digitlab.training import optim
from digitlab.training.config import OPTIMIZERS, TrainConfig
from digitlab.training.optim import create_optimizer, create_scheduler

TORCH_OPTIMIZERS = {
    "adadelta": torch.optim.Adadelta,
    "sgd": lambda params, **kw: torch.optim.SGD(params, momentum=0.9, nesterov=True, **kw),
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
}


def _train(make_optimizer, scheduler="onecycle", steps=12):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 12), torch.nn.ReLU(), torch.nn.Linear(12, 3))
    optimizer = make_optimizer(model.parameters())
    config = TrainConfig(recipe="fast", model="mlp", lr=0.02, epochs=1, scheduler=scheduler,
                         optimizer="adadelta" if isinstance(optimizer, torch.optim.Adadelta)
                         else "adamw")
    schedule = create_scheduler(config, optimizer, steps)
    for _ in range(steps):
        x, y = torch.randn(16, 6), torch.randint(0, 3, (16,))
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        if schedule is not None:
            schedule.step()
    return model, optimizer


@pytest.mark.parametrize("dynamo_loaded", [False, True])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_the_optimisers_update_exactly_as_torch_s_own(name, dynamo_loaded, monkeypatch):
    """Bypassing torch's wrappers (dynamo not loaded) or not, the same update and state."""
    monkeypatch.setattr(optim, "_dynamo_loaded", lambda: dynamo_loaded)
    config = TrainConfig(recipe="fast", model="mlp", optimizer=name, lr=0.02, weight_decay=5e-4)
    scheduler = "step" if name == "adadelta" else "onecycle"  # OneCycle cycles momentum
    ours, ours_opt = _train(lambda p: create_optimizer(config, p), scheduler)
    theirs, theirs_opt = _train(lambda p: TORCH_OPTIMIZERS[name](p, lr=0.02, weight_decay=5e-4),
                                scheduler)
    assert isinstance(ours_opt, type(theirs_opt))
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert torch.equal(a, b)
    mine, torch_s = ours_opt.state_dict(), theirs_opt.state_dict()
    assert mine["param_groups"] == torch_s["param_groups"]
    for a, b in zip(mine["state"].values(), torch_s["state"].values(), strict=True):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    theirs_opt.load_state_dict(mine)  # the checkpoint's optimiser state is torch's format
    ours_opt.load_state_dict(torch_s)


def test_training_with_them_does_not_import_dynamo():
    """torch.optim's wrappers import torch._dynamo (~1.2 s, and sympy and onnx with it)."""
    code = """
import sys, torch
from digitlab.training.config import OPTIMIZERS, TrainConfig
from digitlab.training.optim import create_optimizer, create_scheduler
for name in OPTIMIZERS:
    model = torch.nn.Linear(4, 2)
    config = TrainConfig(recipe="fast", model="mlp", optimizer=name, scheduler="step")
    optimizer = create_optimizer(config, model.parameters())
    schedule = create_scheduler(config, optimizer, 1)
    optimizer.zero_grad()
    model(torch.randn(3, 4)).sum().backward()
    optimizer.step()
    schedule.step()
    optimizer.load_state_dict(optimizer.state_dict())
print(sorted(m for m in ("torch._dynamo", "sympy", "onnx") if m in sys.modules))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"
