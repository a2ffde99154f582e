"""Scatter labels placed apart (ui.labels): hand-placed points in the 620 × 420 px plot the function assumes, each
axis drawn inside an edge of (largest marker radius + 10) px unless a range is given; a label set off its marker of
radius r by r / 0.8 + 1 px, as plotly sets it; positions worked out below."""
from __future__ import annotations

import itertools

import pytest

from ui.labels import (
    LINE_PX, PLOT_WIDTH_PX, POSITIONS, _boxes, corner_box, label_positions, padded_range, text_px,
)


# The checks the tests count clashes with, one box at a time: apart from label_positions' own, vectorised costs.

def _overlap(a, b) -> bool:
    """Whether boxes ``a`` and ``b`` (left, bottom, right, top) share any area."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _clears_marker(box, cx: float, cy: float, r: float) -> bool:
    """Whether the box keeps clear of the circle at (cx, cy) of radius r."""
    nx, ny = min(max(cx, box[0]), box[2]), min(max(cy, box[1]), box[3])
    return (nx - cx) ** 2 + (ny - cy) ** 2 >= r * r


def test_a_lone_point_keeps_its_label_above():
    assert label_positions([1.0], [0.5], ["douyin_flash_sale"], [20]) == ["top center"]
    assert label_positions([], [], [], []) == []


def test_points_far_apart_keep_their_labels_above_unless_that_leaves_the_plot():
    # corners of the plot: no label comes near another point or label. Radius 5, so an edge of 15 px and labels
    # 7.25 px off: the top two, centred at y = 405, would have theirs above over y 412–424, 4 px beyond the plot's
    # 420, so theirs go below (y 386–398)
    x, y, names, sizes = [0, 100, 0, 100], [0, 0, 1, 1], ["a", "b", "c", "d"], [10] * 4
    assert label_positions(x, y, names, sizes) == ["top center"] * 2 + ["bottom center"] * 2
    # with a line's height more room at each end of the y axis (y from 27 to 393), every label fits above
    y_range = padded_range(y, sizes, 420, extra_px=LINE_PX)
    assert y_range == pytest.approx((-27 / 366, 1 + 27 / 366))
    assert label_positions(x, y, names, sizes, y_range=y_range) == ["top center"] * 4


def test_two_points_on_one_spot_label_above_and_below():
    # the same spot: the first listed (same height and x, so taken first) takes "top center"; the second's top box
    # is that very box, so it takes "bottom center", which clears the first label and the first marker (the same
    # circle of radius 8, whose edge the box starts 3 px beyond: 8 / 0.8 + 1 = 11 px from the centre)
    pos = label_positions([5, 5, 0, 10], [0.5, 0.5, 0.0, 1.0], ["wechat_mini_program", "wechat_moments_summer", "x", "y"],
                          [16, 16, 8, 8])
    assert pos[:2] == ["top center", "bottom center"]


def test_a_label_that_would_cover_the_marker_above_goes_below():
    # A at y = 0.50, B right above it at 0.52 (the 0..1 range drawn on 420 − 2 × 20 = 380 px: 0.02 ≈ 7.6 px).
    # A's label above would run from 13.5 to 25.5 px over A's centre, into B's marker (radius 10 around 7.6 px up),
    # so A's label goes below, where nothing is. B, taken first (higher), keeps its label above.
    pos = label_positions([10, 10, 0, 20], [0.50, 0.52, 0.0, 1.0], ["A_campaign", "B_campaign", "lo", "hi"],
                          [20, 20, 8, 8])
    assert pos[1] == "top center" and pos[0] == "bottom center"


def test_the_sample_quadrant_overlaps_less_than_labels_all_above():
    # the Campaign vs retention quadrant of the sample data (CAC, week-1 retention, bubble diameters in px)
    names = ["baidu_brand_search", "baidu_generic_search", "bilibili_anime_preroll", "bilibili_creator_collab",
             "douyin_flash_sale", "douyin_live_stream", "wechat_mini_program", "wechat_moments_summer",
             "wechat_official_account", "weibo_fan_tunnel", "weibo_hot_topic", "xhs_kol_review", "xhs_notes_seeding"]
    x = [56.52, 57.57, 21.61, 29.95, 5.53, 13.67, 15.54, 18.20, 13.22, 26.36, 19.04, 58.72, 22.63]
    y = [0.312, 0.235, 0.176, 0.319, 0.075, 0.173, 0.221, 0.200, 0.318, 0.238, 0.165, 0.559, 0.307]
    sizes = [35.7, 45.5, 25.3, 25.1, 48.0, 31.9, 27.5, 31.2, 30.4, 23.3, 26.0, 30.9, 28.5]
    chosen = label_positions(x, y, names, sizes)
    assert set(chosen) <= set(POSITIONS) and len(chosen) == len(names)

    def clashes(positions):
        # in label_positions' own pixel model: pairs of labels that overlap, and labels over another bubble
        r = [s / 2 for s in sizes]
        edge = max(r) + 10
        px = [edge + (v - min(x)) / (max(x) - min(x)) * (PLOT_WIDTH_PX - 2 * edge) for v in x]
        py = [edge + (v - min(y)) / (max(y) - min(y)) * (420 - 2 * edge) for v in y]
        boxes = [_boxes(px[i], py[i], r[i], text_px(names[i]))[positions[i]] for i in range(len(x))]
        labels = sum(_overlap(a, b) for a, b in itertools.combinations(boxes, 2))
        bubbles = sum(not _clears_marker(boxes[i], px[j], py[j], r[j])
                      for i in range(len(x)) for j in range(len(x)) if i != j)
        return labels, bubbles

    above = clashes(["top center"] * len(names))
    assert above[0] >= 2 and above[1] >= 2     # the crowding the page showed with every name above its bubble
    now = clashes(chosen)
    assert now[0] < above[0] and now[1] < above[1]


def test_a_label_under_a_corner_name_moves_off_it():
    # "dear but loyal" (13 px bold, anchored at the top right): 14 characters × 7.28 px + 6 ≈ 108 px wide and
    # 19.5 px high, over x 506–614 and y 396–416 of the 620 × 420 plot
    corner = corner_box(0.99, 0.99, "right", "top", "dear but loyal")
    assert corner == pytest.approx((613.8 - 107.92, 415.8 - 19.5, 613.8, 415.8), abs=0.01)
    # the highest, rightmost bubble (radius 15) at x 20 of −4..24 and y 1 of −0.1..1.1: centre (531.4, 385); its
    # label above (19.75 px off: y 404.75–416.75, 14 × 5.6 px wide around x 531.4, so 492.2–570.6) runs into the
    # corner name, below (y 353.25–365.25) is clear
    x, y, names, sizes = [0, 10, 20], [0.0, 0.5, 1.0], ["a", "b", "xhs_kol_review"], [10, 10, 30]
    ranges = {"x_range": (-4, 24), "y_range": (-0.1, 1.1)}
    assert label_positions(x, y, names, sizes, **ranges)[2] == "top center"
    assert label_positions(x, y, names, sizes, obstacles=[corner], **ranges)[2] == "bottom center"
    # _boxes' geometry for that label, as plotly.js places it
    assert _boxes(531.4, 385, 15, text_px("xhs_kol_review"))["top center"] == pytest.approx(
        (492.2, 404.75, 570.6, 416.75))


def test_chinese_names_are_measured_a_full_em_a_character():
    # 10 px labels: a Latin character 5.6 px, a CJK one 10 px; "双十一 sale" = 3 × 10 + 5 × 5.6 (space included)
    assert text_px("wechat") == pytest.approx(33.6)
    assert text_px("双十一 sale") == pytest.approx(58.0)
    assert corner_box(0.01, 0.01, "left", "bottom", "便宜但易流失") == pytest.approx(
        (6.2, 4.2, 6.2 + 6 * 13 + 6, 4.2 + 19.5))


def test_a_label_boxed_in_on_four_sides_goes_to_a_corner_of_its_marker():
    # one point at pixel (310, 210) (ranges equal to the pixels), radius 5 so labels 7.25 px off, name 11.2 px wide.
    # Boxes over its label above (x 304.4–315.6, y 217.25–229.25), below, right and left; its label at the top
    # right (x 317.25–328.45, y 217.25–229.25) touches none of them, while the one at the top left (x 291.55–302.75)
    # runs into the box above
    obstacles = [(300, 217, 316, 232), (300, 188, 320, 203), (317, 203.5, 330, 216.5), (289, 203.5, 303, 216.5)]
    pixels = {"x_range": (0, PLOT_WIDTH_PX), "y_range": (0, 420)}
    assert label_positions([310], [210], ["ab"], [10], obstacles=obstacles, **pixels) == ["top right"]
    assert label_positions([310], [210], ["ab"], [10], obstacles=obstacles[1:], **pixels) == ["top center"]


def test_padded_range_of_one_value_and_of_blanks():
    # ±1 % around a single value (±1 around zero); NaNs left out; no value at all gives 0..1
    assert padded_range([50.0, 50.0], [10, 10], 420) == pytest.approx((49.5, 50.5))
    assert padded_range([0.0], [10], 420) == (-1.0, 1.0)
    assert padded_range([float("nan"), 0.0, 1.0], [10, 10, 10], 420) == pytest.approx((-15 / 390, 1 + 15 / 390))
    assert padded_range([], [], 420) == (0.0, 1.0)
    # a marker without a size is left out of the edge (the largest radius, 5, and 10 px: 15 px)
    assert padded_range([0.0, 1.0], [10, float("nan")], 420) == pytest.approx((-15 / 390, 1 + 15 / 390))


def test_points_without_both_coordinates_keep_top_center_and_are_not_in_the_way():
    # the pair of test_a_label_that_would_cover_the_marker_above_goes_below, with two points that plotly does not
    # draw: one without x, highest of all (taken first, were it placed), one without y at x = 2000 (were it counted,
    # the x axis would run to 2000 and squeeze the four drawn points into 12 px)
    x, y, names, sizes = [10, 10, 0, 20], [0.50, 0.52, 0.0, 1.0], ["A_campaign", "B_campaign", "lo", "hi"], [20] * 2 + [8] * 2
    alone = label_positions(x, y, names, sizes)
    assert alone == ["bottom center", "top center", "top center", "top center"]
    nan = float("nan")
    with_blanks = label_positions([nan] + x + [2000], [3.0] + y + [nan], ["no_x"] + names + ["no_y"],
                                  [20] + sizes + [20])
    assert with_blanks == ["top center"] + alone + ["top center"]


def test_a_label_placed_first_moves_when_it_takes_the_only_free_spot_of_a_later_one(monkeypatch):
    # A ("a", 5.6 px) at pixel (327, 210), B ("bb", 11.2 px) at (340, 210), radius 5 (labels 7.25 px off); A, left
    # at the same height, is placed first and takes the top (x 324.2–329.8, y 217.25–229.25). Boxes cover all of
    # B's other spots: O1 those above, below and right of it (x from 334), O2 those at its left and lower left
    # (x 321.55–332.75, y 190.75–216), which also covers A's spot below. B's top left (x 321.55–332.75) shares
    # 5.6 × 12 px with A's label: 4 × 67.2 = 268.8, less than any box it would sit in (4 × 11.2 × 12 = 537.6).
    # A, now in a clash, chooses again: above costs 268.8, below (in O2) as much, right runs into B's bubble, left
    # (x 314.15–319.75) is free; and B's top left is then clear too.
    import ui.labels as labels
    o1, o2 = (334, 185, 360, 235), (321.55, 190.75, 332.75, 216)
    args = ([327, 340], [210, 210], ["a", "bb"], [10, 10])
    kw = {"obstacles": [o1, o2], "x_range": (0, PLOT_WIDTH_PX), "y_range": (0, 420)}
    assert label_positions(*args, **kw) == ["middle left", "top left"]
    monkeypatch.setattr(labels, "REPAIR_ROUNDS", 0)     # the first pass alone
    assert label_positions(*args, **kw) == ["top center", "top left"]


def test_text_over_text_weighs_more_than_text_over_a_bubble(monkeypatch):
    # P ("ab", 11.2 px) at pixel (310, 210), radius 5; Q (no name) at (310, 190), radius 5. Boxes cover P's spots
    # left and right (x up to 303 and from 317); a small one (x 308–315.6, y 226.25–229.25) covers 7.6 × 3 =
    # 22.8 px of its label above. Below (x 304.4–315.6, y 190.75–202.75) reaches into Q's bubble, 10 × 4.25 =
    # 42.5 px of its square. Above costs 4 × 22.8 = 91.2, more than below: P's name goes below.
    import ui.labels as labels
    obstacles = [(280, 185, 303, 235), (317, 185, 340, 235), (308, 226.25, 315.6, 229.25)]
    args = ([310, 310], [210, 190], ["ab", ""], [10, 10])
    kw = {"obstacles": obstacles, "x_range": (0, PLOT_WIDTH_PX), "y_range": (0, 420)}
    assert label_positions(*args, **kw)[0] == "bottom center"
    monkeypatch.setattr(labels, "TEXT_WEIGHT", 1.0)     # text over text counted as text over a bubble: 22.8 < 42.5
    assert label_positions(*args, **kw)[0] == "top center"


def test_a_marker_without_a_size_is_placed_as_a_point():
    # B's size unknown: its label is set off by nothing (_offset of NaN is 0) and its marker counts nowhere, as a
    # marker of size 0 — not NaN boxes that would spoil every other label's cost
    x, y, names = [1, 1, 2], [0.5, 0.52, 0.9], ["aaaa", "bbbb", "c"]
    unknown = label_positions(x, y, names, [20, float("nan"), 10])
    assert unknown == label_positions(x, y, names, [20, 0, 10]) == ["middle right", "top center", "top center"]
