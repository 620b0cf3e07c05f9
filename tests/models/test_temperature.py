"""Temperature scaling: fitted in one place, applied in one place, the same in an exported graph."""

import warnings

import pytest
import torch

from digitlab.models.temperature import apply_temperature, fit_temperature, temper_probabilities


@pytest.mark.parametrize("true_temperature", [0.5, 2.0])
def test_fit_temperature_recovers_a_known_temperature(true_temperature):
    generator = torch.Generator().manual_seed(1)
    logits = 4 * torch.randn(20_000, 10, generator=generator)
    labels = torch.multinomial(torch.softmax(logits / true_temperature, dim=1), 1, generator=generator)
    fitted = fit_temperature(logits, labels.flatten())
    assert fitted == pytest.approx(true_temperature, rel=0.05)


def test_apply_temperature_is_softmax_of_scaled_logits_and_keeps_the_winner():
    logits = torch.randn(50, 10, generator=torch.Generator().manual_seed(0))
    for t in (0.4, 1.0, 3.0):
        probabilities = apply_temperature(logits, t)
        assert torch.allclose(probabilities, torch.softmax(logits / t, dim=1))
        assert torch.allclose(apply_temperature(logits, t, log=True).exp(), probabilities)
        assert torch.equal(probabilities.argmax(1), logits.argmax(1))


def test_tempering_probabilities_equals_tempering_their_logits():
    log_probs = torch.log_softmax(torch.randn(20, 10, generator=torch.Generator().manual_seed(2)), dim=1)
    raw = log_probs.exp()
    assert torch.allclose(temper_probabilities(raw, 0.5), apply_temperature(log_probs, 0.5), atol=1e-6)
    assert temper_probabilities(raw, 1.0) is raw
    # and back: T then 1/T of the tempered logits is the identity
    assert torch.allclose(temper_probabilities(temper_probabilities(raw, 0.5), 2.0), raw, atol=1e-5)


def test_apply_temperature_traces_into_a_graph():
    class Tempered(torch.nn.Module):
        def forward(self, logits: torch.Tensor) -> torch.Tensor:
            return apply_temperature(logits, 0.5)

    logits = torch.randn(3, 10)
    with warnings.catch_warnings():  # TorchScript is deprecated; the export path traces the same way
        warnings.simplefilter("ignore", FutureWarning)
        traced = torch.jit.trace(Tempered(), logits)
    other = torch.randn(7, 10)
    assert torch.allclose(traced(other), torch.softmax(other / 0.5, dim=1))
