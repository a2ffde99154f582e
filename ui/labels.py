"""Where to put the text label of each point of a scatter chart so that labels overlap less.

Plotly draws every label at one ``textposition`` and does not move labels apart, so points close together (the
campaigns of one cheap, churny corner) print their names over each other. :func:`label_positions` picks, point by
point, the first of above, below, right and left whose label box clears the labels already placed, the other
points' markers and any other text drawn on the plot (the names of its corners), in an estimate of the plot's
pixels. It works on the plotted rows (a few dozen, at most some thousands), not on data.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

POSITIONS = ("top center", "bottom center", "middle right", "middle left")
PLOT_WIDTH_PX = 620.0   # the plotting area of a full-width chart on a 1280 px screen (about 750 px on 1400)
LABEL_FONT_PX = 10.0    # the labels' font size
LATIN_EM = 0.56         # mean width of a Latin character, in ems; a CJK character is about one em
LINE_PX = 12       # height of a label line
GAP_PX = 2         # between a marker's edge and its label


def text_px(text: str, font_px: float = LABEL_FONT_PX) -> float:
    """Estimated width in pixels of ``text`` in a font of ``font_px``."""
    return sum(font_px if ord(ch) >= 0x2E80 else LATIN_EM * font_px for ch in text)


def corner_box(x_paper: float, y_paper: float, xanchor: str, yanchor: str, text: str, font_px: float = 13.0, *,
               width_px: float = PLOT_WIDTH_PX, height_px: float = 420.0) -> tuple[float, float, float, float]:
    """The box (left, bottom, right, top, in :func:`label_positions`' pixels) of an annotation placed at paper
    coordinates with plotly's anchors: its text's width (:func:`text_px`) plus a little padding."""
    w = text_px(text, font_px) + 6
    h = font_px * 1.5
    left = x_paper * width_px - (w if xanchor == "right" else w / 2 if xanchor == "center" else 0)
    bottom = y_paper * height_px - (h if yanchor == "top" else h / 2 if yanchor == "middle" else 0)
    return (left, bottom, left + w, bottom + h)


def _boxes(px: float, py: float, r: float, w: float) -> dict[str, tuple[float, float, float, float]]:
    """Each position's label box (left, bottom, right, top) in pixels, y upwards, for a marker of radius r."""
    h = LINE_PX
    return {
        "top center": (px - w / 2, py + r + GAP_PX, px + w / 2, py + r + GAP_PX + h),
        "bottom center": (px - w / 2, py - r - GAP_PX - h, px + w / 2, py - r - GAP_PX),
        "middle right": (px + r + GAP_PX, py - h / 2, px + r + GAP_PX + w, py + h / 2),
        "middle left": (px - r - GAP_PX - w, py - h / 2, px - r - GAP_PX, py + h / 2),
    }


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _shared_areas(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """The area ``box`` shares with each row of ``boxes`` (rows of left, bottom, right, top)."""
    w = np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0])
    h = np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1])
    return np.clip(w, 0, None) * np.clip(h, 0, None)


def _clears_marker(box, cx: float, cy: float, r: float) -> bool:
    """Whether the box keeps clear of the circle at (cx, cy) of radius r."""
    nx, ny = min(max(cx, box[0]), box[2]), min(max(cy, box[1]), box[3])
    return (nx - cx) ** 2 + (ny - cy) ** 2 >= r * r


def label_positions(x: Sequence[float], y: Sequence[float], texts: Sequence[str], sizes: Sequence[float], *,
                    width_px: float = PLOT_WIDTH_PX, height_px: float = 420.0,
                    obstacles: Sequence[tuple[float, float, float, float]] = ()) -> list[str]:
    """A plotly ``textposition`` per point: the first of :data:`POSITIONS` whose label clears the labels already
    placed and every other marker, taking the points from the top of the chart down; when none does, the one that
    covers the fewest of their pixels.

    ``sizes`` are the markers' diameters in pixels; ``width_px`` × ``height_px`` estimates the plotting area (the
    chart's real width follows the page, so the estimate errs on the narrow side). ``obstacles`` are other boxes
    drawn on the plot (left, bottom, right, top in those pixels, from its lower left corner), such as the
    annotations naming its corners: a label avoids them as it avoids the other labels (see :func:`corner_box`)."""
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    names = [str(t) for t in texts]          # by position, whatever the index of a Series
    n = len(xs)
    if n == 0:
        return []

    radius = np.asarray(sizes, dtype=float) / 2
    # plotly's autorange widens each axis so that the largest marker fits, and a little more
    edge = float(radius.max()) + 10.0

    def scale(v: np.ndarray, length: float) -> np.ndarray:
        low, high = float(v.min()), float(v.max())
        return edge + (v - low) / (high - low or 1.0) * max(length - 2 * edge, 1.0)

    px, py = scale(xs, width_px), scale(ys, height_px)
    # the labels placed so far (rows of left, bottom, right, top) and every marker's bounding square
    placed = np.empty((n, 4))
    fixed = np.asarray(obstacles, dtype=float).reshape(-1, 4)
    squares = np.column_stack([px - radius, py - radius, px + radius, py + radius])
    out = ["top center"] * n
    for k, i in enumerate(sorted(range(n), key=lambda m: (-py[m], px[m]))):
        boxes = _boxes(px[i], py[i], radius[i], text_px(names[i]))
        others = np.arange(n) != i

        def cost(pos: str) -> float:
            # pixels shared with the labels placed, the obstacles and the other markers it does not clear (their
            # squares)
            box = np.asarray(boxes[pos])
            shared = _shared_areas(box, placed[:k]).sum() + _shared_areas(box, fixed).sum()
            nx = np.clip(px, box[0], box[2])
            ny = np.clip(py, box[1], box[3])
            into = others & ((nx - px) ** 2 + (ny - py) ** 2 < radius ** 2)
            return float(shared + _shared_areas(box, squares[into]).sum())

        out[i] = min(POSITIONS, key=lambda pos: (cost(pos), POSITIONS.index(pos)))
        placed[k] = boxes[out[i]]
    return out
