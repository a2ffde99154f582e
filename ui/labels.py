"""Where to put the text label of each point of a scatter chart so that labels overlap less.

Plotly draws every label at one ``textposition`` and does not move labels apart, so points close together (the
campaigns of one cheap, churny corner) print their names over each other. :func:`label_positions` picks, point by
point, the first of above, below, right, left and the four corners whose label box clears the other labels, the
other points' markers, any other text drawn on the plot (the names of its corners) and the plot's edges, in an
estimate of the plot's pixels (exact along an axis whose range :func:`padded_range` sets). It works on the plotted
rows (a few dozen, at most some thousands: 0.13 s for 1,000 points), not on data.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# in order of preference: a name centred above or below its bubble reads best, one at a corner of it least
POSITIONS = ("top center", "bottom center", "middle right", "middle left",
             "top right", "top left", "bottom right", "bottom left")
PLOT_WIDTH_PX = 620.0   # the plotting area of a full-width chart on a 1280 px screen (about 750 px on 1400)
LABEL_FONT_PX = 10.0    # the labels' font size
LATIN_EM = 0.56         # mean width of a Latin character, in ems; a CJK character is about one em
LINE_PX = 12            # height of a label line (the font's 10 px and a pixel either side)
TEXT_WEIGHT = 4.0       # a pixel of a label over other text costs as much as 4 over a bubble
OUTSIDE_WEIGHT = 2.0    # and one outside the plot, over the axes' ticks, as much as 2
REPAIR_ROUNDS = 5       # at most, of the labels in a clash choosing again (see label_positions)
REPAIR_MAX = 200        # labels in a clash after the first pass beyond which they are left as they are


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


def _offset(r: float) -> float:
    """How far plotly sets a label off a marker of radius ``r``: ``r / 0.8 + 1`` (plotly.js
    ``Drawing.textPointPosition``, "a little more than the nominal marker size")."""
    return r / 0.8 + 1 if r > 0 else 0.0


def _boxes(px: float, py: float, r: float, w: float) -> dict[str, tuple[float, float, float, float]]:
    """Each position's label box (left, bottom, right, top) in pixels, y upwards, for a marker of radius r, as
    plotly draws it: a name above or below starts :func:`_offset` from the centre, one beside it likewise, and a
    name at a corner (top right, ...) is offset both ways."""
    h, d = LINE_PX, _offset(r)
    up, down, mid = (py + d, py + d + h), (py - d - h, py - d), (py - h / 2, py + h / 2)
    centre, right, left = (px - w / 2, px + w / 2), (px + d, px + d + w), (px - d - w, px - d)
    return {
        "top center": (centre[0], up[0], centre[1], up[1]),
        "bottom center": (centre[0], down[0], centre[1], down[1]),
        "middle right": (right[0], mid[0], right[1], mid[1]),
        "middle left": (left[0], mid[0], left[1], mid[1]),
        "top right": (right[0], up[0], right[1], up[1]),
        "top left": (left[0], up[0], left[1], up[1]),
        "bottom right": (right[0], down[0], right[1], down[1]),
        "bottom left": (left[0], down[0], left[1], down[1]),
    }


def _shared_matrix(boxes: np.ndarray, others: np.ndarray) -> np.ndarray:
    """The area each row of ``boxes`` shares with each row of ``others`` (rows of left, bottom, right, top)."""
    b, o = boxes[:, None, :], others[None, :, :]
    w = np.minimum(b[..., 2], o[..., 2]) - np.maximum(b[..., 0], o[..., 0])
    h = np.minimum(b[..., 3], o[..., 3]) - np.maximum(b[..., 1], o[..., 1])
    return np.clip(w, 0, None) * np.clip(h, 0, None)


def _edge_px(sizes: Sequence[float]) -> float:
    """Room left between each axis end and the nearest marker's centre: the largest radius and 10 px more, as
    plotly's autorange leaves for the largest marker."""
    d = np.asarray(sizes, dtype=float)
    d = d[np.isfinite(d)]
    return float(d.max()) / 2 + 10.0 if d.size else 10.0


def padded_range(values: Sequence[float], sizes: Sequence[float], length_px: float,
                 extra_px: float = 0.0) -> tuple[float, float]:
    """An axis range ``(low, high)`` over which the lowest and the highest of ``values`` are drawn
    :func:`_edge_px` pixels inside an axis of ``length_px`` pixels, for markers of diameters ``sizes``, and
    ``extra_px`` more (room for text drawn along the axis' ends, such as a quadrant's corner names).

    Set on the figure, it makes :func:`label_positions`' pixels those of the chart (along the height, which is
    fixed; the width follows the page): plotly's own autorange also widens an axis for error bars and text, by
    amounts the labels cannot know. ``values`` may hold more than the points (the ends of their error bars); NaNs
    are left out, and a single value gets a range of ±1 around it (or ±1 % of it)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return (0.0, 1.0)
    low, high = float(v.min()), float(v.max())
    if high == low:
        half = abs(low) * 0.01 or 1.0
        return (low - half, high + half)
    edge = min(_edge_px(sizes) + extra_px, length_px / 4)
    per_px = (high - low) / (length_px - 2 * edge)
    return (low - edge * per_px, high + edge * per_px)


def label_positions(x: Sequence[float], y: Sequence[float], texts: Sequence[str], sizes: Sequence[float], *,
                    width_px: float = PLOT_WIDTH_PX, height_px: float = 420.0,
                    obstacles: Sequence[tuple[float, float, float, float]] = (),
                    x_range: tuple[float, float] | None = None,
                    y_range: tuple[float, float] | None = None) -> list[str]:
    """A plotly ``textposition`` per point: the first of :data:`POSITIONS` whose label clears the other labels,
    every other marker, the obstacles and the plot's edges; when none does, the one that costs least (pixels over
    text weigh most, see :data:`TEXT_WEIGHT`). The points are taken from the top of the chart down, each against
    the labels placed before it; then the labels still in a clash choose again against all the others, for a few
    rounds (:data:`REPAIR_ROUNDS`). A point without finite coordinates keeps "top center" and is not in the way.

    ``sizes`` are the markers' diameters in pixels; ``width_px`` × ``height_px`` estimates the plotting area (the
    chart's real width follows the page, so the estimate errs on the narrow side). ``obstacles`` are other boxes
    drawn on the plot (left, bottom, right, top in those pixels, from its lower left corner), such as the
    annotations naming its corners: a label avoids them as it avoids the other labels (see :func:`corner_box`).
    ``x_range`` and ``y_range`` are the axes' ranges when the figure sets them (:func:`padded_range`); without
    them, each axis is taken to run from its lowest to its highest point, :func:`_edge_px` inside each end."""
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    names = [str(t) for t in texts]          # by position, whatever the index of a Series
    n = len(xs)
    if n == 0:
        return []

    radius = np.asarray(sizes, dtype=float) / 2
    drawn = np.isfinite(xs) & np.isfinite(ys)     # plotly leaves out a point without both coordinates

    def scale(v: np.ndarray, length: float, axis: tuple[float, float] | None) -> np.ndarray:
        low, high = axis if axis is not None else padded_range(v[drawn], radius[drawn] * 2, length)
        return (v - low) / (high - low or 1.0) * length

    px, py = scale(xs, width_px, x_range), scale(ys, height_px, y_range)
    # each point's label box once placed (rows of left, bottom, right, top) and every marker's bounding square
    placed = np.zeros((n, 4))
    has = np.zeros(n, dtype=bool)
    fixed = np.asarray(obstacles, dtype=float).reshape(-1, 4)
    squares = np.column_stack([px - radius, py - radius, px + radius, py + radius])
    # every point's box at each position: shape (n, positions, 4)
    boxes = np.array([[_boxes(px[i], py[i], radius[i], text_px(names[i]))[pos] for pos in POSITIONS]
                      for i in range(n)])
    areas = (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
    # pixels of each box outside the plot (over the axes' ticks)
    inside = (np.clip(np.minimum(boxes[..., 2], width_px) - np.maximum(boxes[..., 0], 0), 0, None)
              * np.clip(np.minimum(boxes[..., 3], height_px) - np.maximum(boxes[..., 1], 0), 0, None))
    outside = areas - inside
    over_fixed = _shared_matrix(boxes.reshape(-1, 4), fixed).sum(axis=1).reshape(n, -1)

    def costs(i: int) -> np.ndarray:
        """The cost of each position of point i's label: the pixels it shares with the other labels placed and
        the obstacles (text over text: weighed most), those outside the plot and those over the other markers it
        does not clear (their squares: text over a bubble stays legible)."""
        others = has.copy()
        others[i] = False
        over_text = _shared_matrix(boxes[i], placed[others]).sum(axis=1) + over_fixed[i]
        # the markers near enough to touch any of the boxes, then whether each box reaches into each circle
        near = (np.arange(n) != i) & (squares[:, 0] < boxes[i, :, 2].max()) & (squares[:, 2] > boxes[i, :, 0].min()) \
            & (squares[:, 1] < boxes[i, :, 3].max()) & (squares[:, 3] > boxes[i, :, 1].min())
        over_markers = np.zeros(len(POSITIONS))
        if near.any():
            cx, cy, r = px[near], py[near], radius[near]
            b = boxes[i][:, None, :]
            nx, ny = np.clip(cx, b[..., 0], b[..., 2]), np.clip(cy, b[..., 1], b[..., 3])
            into = (nx - cx) ** 2 + (ny - cy) ** 2 < r ** 2
            over_markers = (_shared_matrix(boxes[i], squares[near]) * into).sum(axis=1)
        return TEXT_WEIGHT * over_text + OUTSIDE_WEIGHT * outside[i] + over_markers

    def choose(i: int) -> float:
        c = costs(i)
        k = int(np.argmin(c))   # the first of the cheapest, in the order of preference
        out[i] = POSITIONS[k]
        placed[i], has[i] = boxes[i, k], True
        return float(c[k])

    out = ["top center"] * n
    order = sorted(np.flatnonzero(drawn), key=lambda m: (-py[m], px[m]))
    clashing = sum(choose(i) > 0 for i in order)
    # a label placed early knew nothing of the later ones: the labels in a clash choose again against all the
    # others, until no choice changes (a few rounds; many points crowded together never settle, and are left)
    for _ in range(REPAIR_ROUNDS if clashing <= REPAIR_MAX else 0):
        before = list(out)
        for i in order:
            if costs(i)[POSITIONS.index(out[i])] > 0:
                choose(i)
        if out == before:
            break
    return out
