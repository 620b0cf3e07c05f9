"""The line reader's net: a CRNN that reads a whole string of digits, no segmenting.

A picture of a number, `HEIGHT` px high and any width, goes through five 3×3 convolution
blocks that pool the height away (32 → 1) but the width only twice (÷ 4), so each column of
features is a time step 4 px wide. A bidirectional LSTM reads the columns left to right and
right to left, and a linear layer gives, per step, log-probabilities over 11 symbols: the
digits 0-9 and CTC's blank. Training uses `nn.CTCLoss`; reading uses `greedy_decode` (the
likeliest symbol per step, repeats merged, blanks dropped), which also gives each digit's
probability and the steps it spans, hence its place in the picture.

This is the shape of the CRNN recognisers of PaddleOCR and EasyOCR, sized for digits on CPUs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

HEIGHT = 32  # the height every picture is resized to, in pixels
STRIDE = 4  # picture columns per time step
SYMBOLS = 11  # the digits and the blank
BLANK = 10  # the blank's index


def _block(cin: int, cout: int, pool: tuple[int, int] | None) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                               nn.ReLU(inplace=True)]
    if pool is not None:
        layers.append(nn.MaxPool2d(pool, pool))
    return layers


class LineNet(nn.Module):
    """N×1×HEIGHT×W pictures (ink bright, background 0) → T×N×SYMBOLS log-probabilities,
    T = W // STRIDE."""

    def __init__(self, widths: Sequence[int] = (16, 32, 64, 64, 96), hidden: int = 96) -> None:
        super().__init__()
        if len(widths) != 5:
            raise ValueError(f"linenet has five convolution blocks; got widths {list(widths)}")
        a, b, c, d, e = widths
        # height 32 → 16 → 8 → 8 → 4 → 2; width ÷ 2 ÷ 2
        self.features = nn.Sequential(
            *_block(1, a, (2, 2)), *_block(a, b, (2, 2)), *_block(b, c, None),
            *_block(c, d, (2, 1)), *_block(d, e, (2, 1)),
        )
        self.project = nn.Linear(e * (HEIGHT // 16), hidden)
        self.rnn = nn.LSTM(hidden, hidden, batch_first=False, bidirectional=True)
        self.head = nn.Linear(2 * hidden, SYMBOLS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)  # N × C × 2 × T
        n, c, h, t = f.shape
        f = f.permute(3, 0, 1, 2).reshape(t, n, c * h)  # T × N × C·2
        f = torch.relu(self.project(f))
        f, _ = self.rnn(f)
        return torch.log_softmax(self.head(f), dim=-1)


def steps_for(widths: torch.Tensor) -> torch.Tensor:
    """How many time steps pictures of these widths give."""
    return torch.div(widths, STRIDE, rounding_mode="floor")


@dataclass
class Decoded:
    """A string read by greedy CTC decoding: its digits, each one's probability (the mean, over
    the steps where it wins, of its probability), and the steps [first, last] each spans."""

    digits: list[int]
    probabilities: list[float]
    spans: list[tuple[int, int]]

    @property
    def text(self) -> str:
        return "".join(str(d) for d in self.digits)


def greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor | None = None) -> list[Decoded]:
    """T×N×SYMBOLS log-probabilities → one `Decoded` per picture (the first `lengths[i]` steps)."""
    probs = log_probs.detach().float().exp()
    best, winner = probs.max(dim=-1)  # T × N
    steps = log_probs.shape[0]
    out = []
    for i in range(log_probs.shape[1]):
        end = steps if lengths is None else int(lengths[i])
        out.append(_collapse(winner[:end, i].tolist(), best[:end, i].tolist()))
    return out


def _collapse(symbols: list[int], confidence: list[float]) -> Decoded:
    digits: list[int] = []
    probabilities: list[float] = []
    spans: list[tuple[int, int]] = []
    previous, run = BLANK, []  # the symbol of the step before, the probabilities of its run
    for t, (s, p) in enumerate(zip(symbols, confidence, strict=True)):
        if s != previous and s != BLANK:
            digits.append(s)
            spans.append((t, t))
            run = [p]
            probabilities.append(p)
        elif s == previous and s != BLANK:
            run.append(p)
            spans[-1] = (spans[-1][0], t)
            probabilities[-1] = sum(run) / len(run)
        previous = s
    return Decoded(digits, probabilities, spans)
