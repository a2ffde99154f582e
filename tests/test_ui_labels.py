"""Scatter labels placed apart (ui.labels): hand-placed points in the 620 × 420 px plot the function assumes, each
axis drawn inside an edge of (largest marker radius + 10) px; positions worked out below."""
from __future__ import annotations

import itertools

import pytest

from ui.labels import (
    PLOT_WIDTH_PX, POSITIONS, _boxes, _clears_marker, _overlap, corner_box, label_positions, text_px,
)


def test_a_lone_point_keeps_its_label_above():
    assert label_positions([1.0], [0.5], ["douyin_flash_sale"], [20]) == ["top center"]
    assert label_positions([], [], [], []) == []


def test_points_far_apart_all_keep_their_labels_above():
    # corners of the plot: no label comes near another point or label
    assert label_positions([0, 100, 0, 100], [0, 0, 1, 1], ["a", "b", "c", "d"], [10] * 4) == ["top center"] * 4


def test_two_points_on_one_spot_label_above_and_below():
    # the same spot: the first listed (same height and x, so taken first) takes "top center"; the second's top box
    # is that very box, so it takes "bottom center", which clears the first label and the first marker (the same
    # circle, whose edge the box starts 2 px beyond)
    pos = label_positions([5, 5, 0, 10], [0.5, 0.5, 0.0, 1.0], ["wechat_mini_program", "wechat_moments_summer", "x", "y"],
                          [16, 16, 8, 8])
    assert pos[:2] == ["top center", "bottom center"]


def test_a_label_that_would_cover_the_marker_above_goes_below():
    # A at y = 0.50, B right above it at 0.52 (the 0..1 range drawn on 420 − 2 × 20 = 380 px: 0.02 ≈ 7.6 px).
    # A's label above would run from 12 to 24 px over A's centre, into B's marker (radius 10 around 7.6 px up),
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
    # the highest, rightmost bubble (radius 15) is drawn at the plot's top right edge, centre (595, 395) with the
    # edge of 25 px: its label above (y 412–424, 14 × 5.6 px wide around x 595) runs into the corner name, below
    # (y 366–378) is clear
    x, y, names, sizes = [0, 10, 20], [0.0, 0.5, 1.0], ["a", "b", "xhs_kol_review"], [10, 10, 30]
    assert label_positions(x, y, names, sizes)[2] == "top center"
    assert label_positions(x, y, names, sizes, obstacles=[corner])[2] == "bottom center"


def test_chinese_names_are_measured_a_full_em_a_character():
    # 10 px labels: a Latin character 5.6 px, a CJK one 10 px; "双十一 sale" = 3 × 10 + 5 × 5.6 (space included)
    assert text_px("wechat") == pytest.approx(33.6)
    assert text_px("双十一 sale") == pytest.approx(58.0)
    assert corner_box(0.01, 0.01, "left", "bottom", "便宜但易流失") == pytest.approx(
        (6.2, 4.2, 6.2 + 6 * 13 + 6, 4.2 + 19.5))
