"""The line reader's net and its CTC decoding."""

from __future__ import annotations

import math

import pytest
import torch

from digitlab.models.linenet import BLANK, HEIGHT, STRIDE, SYMBOLS, LineNet, greedy_decode, steps_for


def logits_for(path: list[int], sure: float = 0.9) -> torch.Tensor:
    """T×1×SYMBOLS log-probabilities whose winner at step t is path[t] with probability `sure`."""
    rest = (1 - sure) / (SYMBOLS - 1)
    probs = torch.full((len(path), 1, SYMBOLS), rest)
    for t, s in enumerate(path):
        probs[t, 0, s] = sure
    return probs.log()


def test_repeats_merge_and_blanks_separate_equal_digits():
    _ = BLANK
    decoded = greedy_decode(logits_for([_, 1, 1, _, 0, 0, _, 0, _, _, 0, 7, 7]))[0]
    assert decoded.text == "10007"
    assert decoded.spans == [(1, 2), (4, 5), (7, 7), (10, 10), (11, 12)]


def test_each_digit_gets_the_mean_probability_of_its_steps():
    probs = torch.full((3, 1, SYMBOLS), 0.01)
    probs[0, 0, 4], probs[1, 0, 4], probs[2, 0, BLANK] = 0.6, 0.8, 0.9
    decoded = greedy_decode(probs.log())[0]
    assert decoded.digits == [4]
    assert decoded.probabilities == [pytest.approx(0.7)]


def test_only_each_pictures_own_steps_are_decoded():
    both = torch.cat([logits_for([3, BLANK, 5, 5]), logits_for([3, BLANK, 5, 5])], dim=1)
    assert [d.text for d in greedy_decode(both, torch.tensor([4, 1]))] == ["35", "3"]


def test_all_blank_is_no_digit():
    decoded = greedy_decode(logits_for([BLANK] * 6))[0]
    assert decoded.text == "" and decoded.digits == [] and decoded.spans == []


def test_the_net_gives_a_step_per_stride_columns_of_any_width():
    net = LineNet().eval()
    for width in (8, 37, 200):
        out = net(torch.rand(2, 1, HEIGHT, width))
        assert out.shape == (width // STRIDE, 2, SYMBOLS)
        assert torch.allclose(out.exp().sum(-1), torch.ones(width // STRIDE, 2), atol=1e-5)
    assert steps_for(torch.tensor([8, 37])).tolist() == [2, 9]


def test_ctc_loss_falls_when_training_on_one_string():
    torch.manual_seed(0)
    net = LineNet(widths=(8, 8, 16, 16, 16), hidden=16)
    x = torch.rand(4, 1, HEIGHT, 48)
    targets, lengths = torch.tensor([1, 0, 0, 7] * 4), torch.tensor([4] * 4)
    ctc = torch.nn.CTCLoss(blank=BLANK)
    optimiser = torch.optim.Adam(net.parameters(), 1e-2)
    losses = []
    for _ in range(150):
        loss = ctc(net(x), targets, torch.full((4,), 48 // STRIDE), lengths)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss))
    assert math.isfinite(losses[-1]) and losses[-1] < 0.2 * losses[0]
    assert [d.text for d in greedy_decode(net.eval()(x))] == ["1007"] * 4
