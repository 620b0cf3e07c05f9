"""Folding batch norm for inference: the same outputs, fewer layers, the trained model untouched."""

import torch

from digitlab.models import create_model
from digitlab.models.fusion import fold_batch_norm


def test_folding_batch_norm_keeps_the_outputs_and_leaves_the_model_alone():
    torch.manual_seed(0)
    model = create_model("bncnn")
    with torch.no_grad():  # batch-norm statistics that are not the identity
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    model.eval()
    folded = fold_batch_norm(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == 3  # a copy was folded
    stage = [type(m).__name__ for m in folded.features[0]]
    assert stage == ["Conv2d", "Identity", "MaxPool2d", "ReLU"]  # pooled before ReLU
    x = torch.randn(16, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(folded(x), model(x), atol=1e-4)
