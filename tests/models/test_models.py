import pytest
import torch

from digitlab.errors import ConfigError
from digitlab.models import count_parameters, create_model, list_models, register_model


@pytest.mark.parametrize("name", list_models())
def test_every_model_maps_images_to_log_probabilities(name):
    model = create_model(name).eval()
    out = model(torch.randn(5, 1, 28, 28))
    assert out.shape == (5, 10)
    torch.testing.assert_close(out.exp().sum(dim=1), torch.ones(5))


@pytest.mark.parametrize("name", list_models())
def test_every_model_takes_num_classes(name):
    assert create_model(name, num_classes=3).eval()(torch.randn(2, 1, 28, 28)).shape == (2, 3)


def test_parameter_counts_match_the_tutorial():
    assert count_parameters(create_model("cnn")) == 1_199_882
    assert count_parameters(create_model("mlp")) == 101_770


def test_cnn_state_dict_names_match_the_tutorial_net():
    shapes = {k: tuple(v.shape) for k, v in create_model("cnn").state_dict().items()}
    assert shapes == {
        "conv1.weight": (32, 1, 3, 3), "conv1.bias": (32,),
        "conv2.weight": (64, 32, 3, 3), "conv2.bias": (64,),
        "fc1.weight": (128, 9216), "fc1.bias": (128,),
        "fc2.weight": (10, 128), "fc2.bias": (10,),
    }


def test_mlp_is_configurable():
    model = create_model("mlp", hidden=[256, 64, 32], activation="tanh")
    assert [k for k in model.state_dict() if k.endswith("weight")] == [
        "fc1.weight", "fc2.weight", "fc3.weight", "fc4.weight"]
    with pytest.raises(ConfigError, match="activation"):
        create_model("mlp", activation="swish")


def test_registry_rejects_unknown_and_duplicate_names():
    with pytest.raises(ConfigError, match="unknown model 'resnet'.*cnn"):
        create_model("resnet")
    with pytest.raises(ValueError, match="already registered"):
        register_model("cnn")(lambda **kw: None)



def test_fastcnn_never_runs_a_layer_at_full_resolution():
    model = create_model("fastcnn").eval()
    sizes = []
    for stage in model.features:
        stage.register_forward_hook(lambda m, i, o: sizes.append(tuple(o.shape[1:])))
    assert model(torch.randn(3, 1, 28, 28)).shape == (3, 10)
    assert sizes == [(16, 14, 14), (32, 7, 7), (32, 7, 7)]
    assert count_parameters(model) < 40_000
    with pytest.raises(ValueError, match="three stages"):
        create_model("fastcnn", widths=[8, 16])
