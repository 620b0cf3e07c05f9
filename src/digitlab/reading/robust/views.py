"""Several 28×28 views of one picture, and how the model's answers choose among them.

`preprocess_robust` (the `robust` pipeline) adds plain views (reading.plain) to its own when
cues say its lighting correction may have misread a picture. `Predictor.read_prepared`
classifies each view; the answer most views agree on wins, read from the view surest of it;
when no answer has a majority, the surest view wins (`choose_view`).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import torch
from PIL import Image

from digitlab.reading.canvas import Prepared
from digitlab.reading.images import to_grayscale
from digitlab.reading.plain import plain_ink, preprocess_plain
from digitlab.reading.robust.centring import as_mnist, robust_view
from digitlab.reading.robust.find_ink import MIN_CONTRAST, why_no_ink

# Cues that the lighting correction may have misread the picture (see preprocess_robust):
UNEVEN = 0.02  # the paper's level varies by more than this
STEP = 0.04  # ... and jumps by more than this between neighbouring pixels of its small copy
SMALL_SOURCE = 128  # a picture no longer than this has little paper to measure
FILLS, TOUCH_MARGIN = 0.8, 0.02  # ink spanning this share of the frame, or this near two sides
TOUCHES_TWO = "the ink touches two sides of the frame"
EATEN = 4  # plain finds this many times robust's least contrast where robust found none


def preprocess_robust(image: Image.Image, lighting: str | None = None) -> Prepared:
    """Find the ink whatever the polarity, lighting or format; crop, scale, centre as MNIST.

    A picture already in MNIST's format is taken as it is (`as_mnist`). Most others get one
    view; where cues say the lighting correction may have gone wrong, the result also carries
    `alternatives`, other 28×28 views of the same picture (`steps["views"]` says why), and
    `Predictor.read_digits` lets the model choose (`choose_view`):

    - the paper's level has steps (a shadow's, sheet's or table's edge): the main view
      follows them with a finer opening (lighting "steps");
    - the ink fills the frame or touches two of its sides, or the picture is small and its
      light looks uneven (a low-resolution scan, a cell cut from a form, a marker digit): a
      wide opening finds no paper between strokes and eats soft ones, so the plain recipe,
      with and without a plane taken off the paper's level, is asked too (not for a digit
      that only touches two sides of stepped paper: plain views take the shade for ink).

    `lighting` forces one view ("opening", "steps" or "plane") and no alternatives.
    """
    only = robust_view(image, lighting) if lighting is not None else as_mnist(image)
    if only is not None:
        return only
    view = robust_view(image, "opening")
    even = view.steps.get("paper_range", 0.0) < UNEVEN
    # A small picture is a cue only when its light looks uneven or no ink was found: MNIST-like
    # 28×28 digits on an even ground are read as they are, at full speed.
    cue = _fills_frame(view.steps, image.size, small=not (even and view.has_ink))
    if even and view.has_ink and cue is None:
        return view  # nothing to doubt: most pictures
    if view.steps.get("paper_step", 0.0) >= STEP:
        view = robust_view(image, "steps")
        view.steps["why"] = "steps in the paper's level (a shadow's or a sheet's edge)"
        cue = _fills_frame(view.steps, image.size, small=True)
        cue = None if cue == TOUCHES_TWO else cue  # see above: a digit in a shadowed corner
    if not view.has_ink:
        # Robust found nothing; a soft digit that fills its frame may still be there for the
        # plain recipe, if what it finds passes robust's tests for strokes (a 1 cropped tight
        # covers most of its picture: that alone does not rule it out).
        plain, info = plain_ink(to_grayscale(image))
        reason = why_no_ink(plain > 0, info["contrast"]) if info["has_ink"] else "no ink"
        if reason not in (None, "ink covers most of the image"):
            return view
        if view.steps.get("reason") == "contrast too low" and info["contrast"] >= EATEN * MIN_CONTRAST:
            cue = cue or "the lighting correction took the ink for paper"
        if cue is None:
            return view
    elif cue is None:
        return view

    for name, level_light in (("plain", False), ("plain-levelled", True)):
        other = preprocess_plain(image, level_light)
        if other.has_ink:
            view.alternatives[name] = other.pixels
    main = view.steps["lighting"]
    if not view.has_ink and view.alternatives:  # the plain views found what robust did not
        main = next(iter(view.alternatives))
        view.pixels = view.alternatives.pop(main)
        view.has_ink, view.steps["has_ink"] = True, True
    view.steps["views"] = {"main": main,
                           "others": list(view.alternatives), "why": cue or view.steps.get("reason")}
    return view


def _fills_frame(steps: dict[str, Any], size: tuple[int, int], small: bool) -> str | None:
    """Why a digit's picture leaves no paper around it to measure the light by, or None.

    With `small`, a picture no longer than SMALL_SOURCE is reason enough.
    """
    w, h = size
    if small and max(w, h) <= SMALL_SOURCE:
        return f"a small picture ({w}×{h})"
    if steps.get("reason") == "ink covers most of the image":
        return "the ink fills the frame"
    box = steps.get("ink_box")
    if box is None:
        return None
    if max((box[2] - box[0]) / w, (box[3] - box[1]) / h) >= FILLS:
        return "the ink fills the frame"
    margin = TOUCH_MARGIN * max(w, h)
    touching = (box[0] <= margin, box[1] <= margin, box[2] >= w - margin, box[3] >= h - margin)
    return TOUCHES_TWO if sum(touching) >= 2 else None


def choose_view(names: list[str], probabilities: torch.Tensor) -> tuple[int, dict[str, Any]]:
    """The index of the view to answer with, and what each view said and why it was chosen.

    `probabilities` is views × classes, in the order of `names`.
    """
    answers = probabilities.argmax(1).tolist()
    confidence = probabilities.amax(1).tolist()
    digit, votes = Counter(answers).most_common(1)[0]
    if 2 * votes > len(names):
        index = max((i for i, a in enumerate(answers) if a == digit), key=lambda i: confidence[i])
        why = f"{votes} of {len(names)} views agree"
    else:
        index = max(range(len(names)), key=lambda i: confidence[i])
        why = "the views disagree: the surest one"
    record = {"chosen": names[index], "because": why,
              "answers": {n: [a, round(c, 4)] for n, a, c in zip(names, answers, confidence, strict=True)}}
    return index, record
