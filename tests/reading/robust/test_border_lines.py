"""Edges and shade that reach the frame, told from strokes (masks drawn with numpy)."""

from __future__ import annotations

import numpy as np

from digitlab.reading.robust.border_lines import find_border_lines


def _digit_and_corner_shade(shade_strength: float) -> tuple[np.ndarray, np.ndarray]:
    """A thick 1 running into the bottom of a 200×200 frame, and a patch in the top right corner
    (what a shadow's edge leaves where it meets the border)."""
    strength = np.zeros((200, 200), np.float32)
    strength[60:200, 95:105] = 0.5  # the 1, cropped at the bottom
    strength[0:20, 150:200] = shade_strength  # the patch
    return strength > 0.1, strength


def test_faint_shade_is_removed_even_when_the_digit_also_reaches_the_frame():
    mask, strength = _digit_and_corner_shade(0.25)
    found, count = find_border_lines(mask, strength)
    assert count == 1
    assert found[5, 170] and not found[100, 100]


def test_a_part_as_dark_as_the_rest_is_kept():
    mask, strength = _digit_and_corner_shade(0.5)
    assert find_border_lines(mask, strength)[1] == 0
    assert find_border_lines(mask)[1] == 0  # without strengths: only shape decides


def test_faint_shade_beside_a_digit_inside_the_frame_is_removed():
    mask, strength = _digit_and_corner_shade(0.25)
    mask[150:, :], strength[150:, :] = False, 0  # the 1 no longer reaches the bottom
    found, count = find_border_lines(mask, strength)
    assert count == 1 and found[5, 170] and not found[100, 100]


def test_nothing_is_removed_when_only_one_part_is_there():
    strength = np.zeros((100, 100), np.float32)
    strength[0:100, 45:55] = 0.2  # a faint 1 cropped at both ends
    assert find_border_lines(strength > 0.1, strength)[1] == 0
