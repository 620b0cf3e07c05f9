"""Every threshold of reading/, once: one frozen dataclass per stage, a comment per field.

Grey levels are floats in [0, 1] (1/255 is one 8-bit step); "px" are pixels of the copy a stage
works on, named with it; shares are of the picture's or the digit's longer side unless said.
A stage reads its parameters from the instance below its class (`INK.min_contrast`); a test or
an experiment swaps one with `dataclasses.replace`. Changing a value changes what every
pipeline reads: measure on the real development sets before and after.
"""

from __future__ import annotations

from dataclasses import dataclass

EPSILON = 1e-6  # stands in for 0 below a division: a blank map is divided by this, not by 0
HISTOGRAM_FLOOR = 1e-12  # the top a histogram of a blank map is scaled by (bins stay finite)
DECIMALS = 4  # measures kept in a reading's `steps` (what `--json` shows) are rounded to this


@dataclass(frozen=True)
class Polarity:
    """Which way round the ink is: dark on light paper, or light on dark (reading.measures)."""

    # The paper is the majority of pixels: a median this far from mid-grey (0.5) decides alone.
    # Nearer mid-grey, the longer tail of the histogram is the ink.
    clear_of_mid_grey: float = 0.15
    tail: float = 0.005  # the tails are measured at these quantiles (0.5% and 99.5%)
    # A dark median can also be paper half in shadow, or a dark table around a sheet. Pictures
    # at least this many px on their shorter side may be such photos ...
    photo_side: int = 64
    # ... whose thin strokes are found on a copy this many px on its shorter side, against a
    # local median over a window this share (1/4) of that copy wide: much wider than a stroke,
    # so the median follows the paper, steps in its level included ...
    thin_copy_side: int = 48
    thin_window_share: int = 4  # the window is (shorter side) // this, at least `min_window` px
    min_window: int = 3
    thin_percentiles: tuple[float, float] = (0.5, 99.5)  # the darkest and lightest 0.5% are strokes
    # ... and dark ink is taken when its strokes stand out this many times more than light ones.
    clearly: float = 1.5


@dataclass(frozen=True)
class Lighting:
    """The paper's slowly varying level (shadows, vignetting), taken off before thresholding
    (reading.robust.lighting)."""

    background_side: int = 64  # px: shorter side of the copy the level is estimated on
    step_side: int = 128  # px: shorter side of the copy on which steps in the level are followed
    # The wide opening's window: (shorter side of the 64-px copy) // 3, wider than any stroke
    # there, so strokes are opened away; the fine one for steps: // 6 of the 128-px copy.
    opening_share: int = 3
    step_opening_share: int = 6
    min_window: int = 3  # px: the smallest window either opening uses
    flat: float = 0.5 / 255  # a level varying less than half an 8-bit step is even paper
    # A plane is fitted to paper only when Otsu leaves at least this many px of it (64-px copy);
    # fewer would fit noise, so the median is taken instead.
    min_plane_pixels: int = 10


@dataclass(frozen=True)
class InkFinding:
    """The ink-bright map and the tests that tell ink from nothing (reading.robust.find_ink)."""

    work_size: int = 768  # px: longest side analysed: 8 digits in a row still get ~90 px each
    float_pixels: int = 1_000_000  # pictures up to this many px are shrunk as floats (exact)
    # Noise: the median absolute deviation of the paper-flattened map, × 1.4826 (a Gaussian's
    # sigma); the threshold never falls within `noise_sigmas` of the median.
    mad_to_sigma: float = 1.4826
    noise_sigmas: float = 3.0
    # The ink's level: the 50th-brightest pixel, at most the brightest 0.05%, so a hairline
    # digit on a big page still counts while a few hot pixels do not.
    top_pixels: int = 50
    top_share: float = 5e-4
    full_ink: float = 0.9  # the quantile of the thresholded ink that is stretched to 1
    min_contrast: float = 0.08  # grey levels (~20/255) between paper and ink: less is nothing
    min_ink_pixels: int = 10  # px at the working size: fewer is too little ink
    max_ink_share: float = 0.5  # ink covering more than half the picture is not a digit
    min_extent: float = 0.03  # ink spans at least this share of the longer side (a hairline 1 does)
    # Only ink under this share of the picture can be a lone dot (spares the distance transform);
    # a digit is longer than `min_elongation` stroke widths.
    small_ink_share: float = 0.02
    min_elongation: float = 2.5
    # Variance left after a 3×3 mean over the mask's variance: iid noise scores 1/9, a 1-px
    # line 1/3; below this it is noise, not strokes.
    coherence_window: int = 3
    min_coherence: float = 0.25


@dataclass(frozen=True)
class Cleaning:
    """Specks, and edges or shade running into the frame, taken out of the ink
    (reading.robust.find_ink, reading.robust.border_lines)."""

    speck_share: float = 0.02  # components smaller than this share of the largest are specks
    min_speck: int = 2  # px: and a component of one pixel always is
    edge_rim: float = 0.01  # an edge's or shade's soft rim, taken with it: share of the longer side
    touch: float = 0.01  # a component this near the border (and at least 2 px) touches it
    min_length: float = 0.3  # an edge spans at least this share of the picture's longer side
    max_thickness: float = 0.12  # its area / length is at most this share of its length
    max_bend: float = 0.1  # the spread (std) across its main axis, over its length
    longer_than_rest: float = 1.3  # its length over the longer side of the other ink's box
    # Shade: its deepest point over the other ink's (at this percentile), or a crumb under
    # `crumb` of the other ink's area farther than `far` of its longer side from it, or
    # typically fainter than `fainter` times the other ink (a pen is equally dark along a digit).
    thicker_than_rest: float = 3.0
    rest_depth_percentile: float = 95.0
    crumb: float = 0.1
    far: float = 0.3
    fainter: float = 0.8
    min_line_pixels: int = 3  # fewer pixels have no axis to be a line along


@dataclass(frozen=True)
class Centring:
    """Crop, thicken, scale and centre one digit as MNIST was made (reading.robust.centring)."""

    # A first look at this size (px, longer side) is enough for a digit at least `quick_digit`
    # px tall there, drawn in strokes at least `quick_stroke` px wide.
    quick_size: int = 128
    quick_digit: int = 56
    quick_stroke: float = 3.0
    # Output px (MNIST's median stroke is 2.56): a thinner stroke is grown to `target_stroke`.
    min_stroke: float = 2.5
    target_stroke: float = 2.5
    mid_size: int = 80  # px: digits are measured and thickened at 4 × the 20-px box, then averaged
    # A mid-size pixel that a stroke covers by more than this share is ink for thickening
    # (max-pool-like, so thin lines stay connected).
    touched: float = 0.05
    # Crops are rounded to this many decimals: 1 - x and x differ by float noise, and
    # anti-aliased edges sit exactly at the 0.5 the stroke width is measured at.
    crop_decimals: int = 5
    # A picture already in MNIST's format: 28×28, its ink box this many px on its longer side,
    # its centre of mass at most this many px from (14, 14).
    mnist_box: tuple[int, ...] = (19, 20, 21)
    mnist_off_centre: float = 1.0


@dataclass(frozen=True)
class Views:
    """When the robust pipeline also asks the plain recipe (reading.robust.views)."""

    uneven: float = 0.02  # grey levels: the paper's level varies by more than this ...
    step: float = 0.04  # ... and jumps by more than this between neighbours of its 64-px copy
    small_source: int = 128  # px: a picture no longer than this has little paper to measure
    fills: float = 0.8  # ink spanning this share of the frame fills it
    touch_margin: float = 0.02  # ink this near a side (share of the longer side) touches it
    eaten: float = 4.0  # plain finds this many times robust's least contrast where robust found none


@dataclass(frozen=True)
class Plain:
    """The plain MNIST recipe (reading.plain) and Fashion-MNIST's (reading.products)."""

    border: float = 0.05  # plain: the outer 5% of each side says what the paper looks like
    otsu_bins: int = 256  # plain's Otsu histogram: one bin per 8-bit level
    product_border: float = 0.04  # product photos: the outer 4% is the backdrop
    # An object differs from its backdrop by at least this much somewhere (grey levels; a
    # white sneaker on a white studio backdrop is fainter than ink on paper).
    min_object_contrast: float = 0.06
    trim: float = 0.1  # share of the object's contrast above which a pixel is object, for trimming
    backdrop_decimals: int = 3  # the backdrop's level, as `steps` shows it


@dataclass(frozen=True)
class NumberSplitting:
    """Splitting a written number into digits (reading.segment). Shares are of the typical
    digit height unless said."""

    overlap: float = 0.5  # pieces sharing more than this share of the narrower one's columns are one
    fragment: float = 0.35  # a piece smaller than this is a fragment ...
    reach: float = 0.3  # ... joining a neighbour this close; else dropped
    group: int = 3  # at most this many neighbouring pieces are tried as one digit, when
    widest: float = 1.5  # together no wider than this, and at most one of them is
    part: float = 0.75  # at least this tall (two whole-height pieces are two digits, never one)
    digit_bonus: float = 0.3  # added to each digit's log-confidence: a near tie goes to more digits
    # Pictures shorter than `small` px on their longer side are enlarged to about it (by at
    # most `max_enlarge`), so that the anti-aliased rims of digits 1-2 px apart do not join.
    small: int = 256
    max_enlarge: int = 8
    wide: float = 0.8  # a piece wider than this share of its own height may be touching digits,
    twice: float = 1.6  # (beside two digits or more: wider than this many times their median width)
    narrowest: float = 0.25  # cut at thin columns no nearer than this share of its height together
    max_cuts: int = 4
    profile_window: int = 3  # px: the column profile is smoothed over this many columns
    one_wide: float = 1.25  # a digit wider than this share of its height ...
    wide_cost: float = 2.0  # ... costs this much log-confidence (two digits squeezed in one box)
    neck: float = 0.6  # eroding a piece no further than this share of its deepest point ...
    neck_levels: int = 6  # ... in this many steps, looking for
    core: float = 0.15  # cores at least this share of the biggest one's size
    cut_cost: float = 0.2  # taken off the bonus of a digit that is only part of a cut piece,
    slice_sure: float = 0.7  # which is only a digit at all when the model gives it at least this
    # An enlarged small picture was written with a pen broad for its digits: where two touch,
    # the join is as thick as a stroke, so eroding finds no neck. Its wide pieces are cut at
    # columns instead, from this share of the height wide (a 13 touching is narrower than
    # `wide`), and as near as this share of the height to the piece's ends.
    small_wide: float = 0.6
    small_edge: float = 0.1


POLARITY = Polarity()
LIGHTING = Lighting()
INK = InkFinding()
CLEANING = Cleaning()
CENTRING = Centring()
VIEWS = Views()
PLAIN = Plain()
SPLITTING = NumberSplitting()
