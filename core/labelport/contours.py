"""Exact outlines of 2D masks along pixel edges (for RT Structure Sets and other polygon formats).

A pixel ``(r, c)`` covers ``[c, c + 1] x [r, r + 1]`` in corner coordinates ``(x, y)``. The outline of a mask
is the set of pixel edges between an inside and an outside pixel, chained into closed loops that turn only at
corners. Rasterising the loops with the pixel-centre rule and even-odd filling gives back exactly the mask
(voxel centres never lie on an edge), which contours through pixel centres do not. Holes come out as separate
loops; pixels that touch only at a corner belong to separate loops (4-connectivity).
"""

from __future__ import annotations

import numpy as np

__all__ = ["keyhole_outlines", "mask_outlines", "rasterize"]

# segment kinds: direction of travel (dx, dy) with the inside on the right (y grows downwards)
_RIGHT, _DOWN, _LEFT, _UP = (1, 0), (0, 1), (-1, 0), (0, -1)


def _runs(edges: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximal runs of True along axis 1: (row, first column, last column + 1) for each run."""
    padded = np.zeros((edges.shape[0], edges.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = edges
    step = np.diff(padded, axis=1)
    rows, starts = np.nonzero(step == 1)
    _, stops = np.nonzero(step == -1)
    return rows, starts, stops


def _segments(mask: np.ndarray) -> list[tuple[int, int, int, int, tuple[int, int]]]:
    """Boundary segments (x0, y0, x1, y1, direction), each a maximal straight run of pixel edges."""
    m = np.pad(mask.astype(bool), 1)
    inner = m[1:-1, 1:-1]
    top = inner & ~m[:-2, 1:-1]
    bottom = inner & ~m[2:, 1:-1]
    left = inner & ~m[1:-1, :-2]
    right = inner & ~m[1:-1, 2:]
    out: list[tuple[int, int, int, int, tuple[int, int]]] = []
    r, a, b = _runs(top)  # along the top edge of row r, left to right
    out += [(int(x0), int(y), int(x1), int(y), _RIGHT) for y, x0, x1 in zip(r, a, b)]
    r, a, b = _runs(bottom)  # along the bottom edge, right to left
    out += [(int(x1), int(y) + 1, int(x0), int(y) + 1, _LEFT) for y, x0, x1 in zip(r, a, b)]
    c, a, b = _runs(left.T)  # down the left edge of column c is the wrong way: go up
    out += [(int(x), int(y1), int(x), int(y0), _UP) for x, y0, y1 in zip(c, a, b)]
    c, a, b = _runs(right.T)  # down the right edge
    out += [(int(x) + 1, int(y0), int(x) + 1, int(y1), _DOWN) for x, y0, y1 in zip(c, a, b)]
    return out


def _right_turn(d: tuple[int, int], candidates: list[int], segs: list[tuple[int, int, int, int, tuple[int, int]]]
                ) -> int:
    """Of two segments leaving a corner, the one turning right of direction ``d`` (y down: right of
    (dx, dy) is (-dy, dx))."""
    want = (-d[1], d[0])
    for index in candidates:
        if segs[index][4] == want:
            return index
    return candidates[0]


def mask_outlines(mask: np.ndarray) -> list[np.ndarray]:
    """Closed outlines of a 2D boolean mask indexed ``[row, column]``, as (N, 2) int arrays of corner
    coordinates ``(x, y)`` = (column, row) edges; the first point is not repeated. Outer boundaries run
    clockwise on screen (y down), holes counter-clockwise; readers fill them with the even-odd rule."""
    segs = _segments(mask)
    leaving: dict[tuple[int, int], list[int]] = {}
    for index, (x0, y0, _, _, _) in enumerate(segs):
        leaving.setdefault((x0, y0), []).append(index)
    used = [False] * len(segs)
    loops = []
    for first in range(len(segs)):
        if used[first]:
            continue
        points, index = [], first
        while True:
            used[index] = True
            x0, y0, x1, y1, d = segs[index]
            points.append((x0, y0))
            options = [i for i in leaving[(x1, y1)] if not used[i] or i == first]
            nxt = options[0] if len(options) == 1 else _right_turn(d, options, segs)
            if nxt == first:
                break
            index = nxt
        loops.append(np.asarray(points, dtype=np.int64))
    return loops


def _area(loop: np.ndarray) -> float:
    """Signed area (shoelace): positive for outer boundaries as :func:`mask_outlines` runs them."""
    x, y = loop[:, 0].astype(float), loop[:, 1].astype(float)
    return float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)) / 2


def _owner(loop: np.ndarray, labels: np.ndarray) -> int:
    """The 4-connected region a loop bounds: the pixel on the inside (right) of its first edge."""
    (x0, y0), (x1, y1) = loop[0], loop[1]
    dx, dy = int(np.sign(x1 - x0)), int(np.sign(y1 - y0))
    rx, ry = -dy, dx  # right of the direction of travel, y down
    col = int(np.floor(x0 + 0.5 * dx + 0.5 * rx))
    row = int(np.floor(y0 + 0.5 * dy + 0.5 * ry))
    return int(labels[row, col])


def keyhole_outlines(mask: np.ndarray) -> list[np.ndarray]:
    """Outlines of a 2D boolean mask with every hole joined to the boundary around it by a keyhole: one
    closed outline per 4-connected region, which goes out along pixel edges to each hole, round it and back
    the same way. The channel has no area and never passes a pixel centre, so readers that fill by the
    even-odd rule and readers that fill by the non-zero winding rule or take the union of contours (and so
    would fill separate hole contours) all give back exactly the mask."""
    from scipy import ndimage

    loops = mask_outlines(mask)
    if all(_area(loop) > 0 for loop in loops):
        return loops
    labels, _ = ndimage.label(mask)  # 4-connectivity, as the outlines
    outers = {_owner(loop, labels): loop for loop in loops if _area(loop) > 0}
    holes: dict[int, list[np.ndarray]] = {}
    for loop in loops:
        if _area(loop) < 0:
            holes.setdefault(_owner(loop, labels), []).append(loop)
    out = []
    for region, outer in outers.items():
        path = [tuple(p) for p in outer]
        for hole in holes.get(region, []):
            h = tuple(hole[0])
            at = min(range(len(path)), key=lambda n: abs(path[n][0] - h[0]) + abs(path[n][1] - h[1]))
            o = path[at]
            corner = (h[0], o[1])  # along grid lines only: the channel never crosses a pixel centre
            ring = [tuple(p) for p in hole] + [h]
            path[at + 1:at + 1] = [corner, *ring, corner, o]
        out.append(np.asarray(path, dtype=np.int64))
    return out


def rasterize(loops: list[np.ndarray], shape: tuple[int, int], rule: str = "evenodd") -> np.ndarray:
    """Fill outlines with the pixel-centre rule; ``shape`` is (rows, columns). ``rule="evenodd"`` (what most
    planning systems do, and the inverse of :func:`mask_outlines`) or ``"union"`` (each outline filled on its
    own, by the non-zero winding rule, and the results combined: what readers that union contours do). For
    checks."""
    out = np.zeros(shape, dtype=bool)
    ys = np.arange(shape[0]) + 0.5
    xs = np.arange(shape[1]) + 0.5
    for loop in loops:
        winding = np.zeros(shape, dtype=np.int64)
        x0, y0 = loop[:, 0].astype(float), loop[:, 1].astype(float)
        x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
        for k in range(len(loop)):
            if y0[k] == y1[k]:
                continue  # horizontal edges never cross a row of centres
            lo, hi = sorted((y0[k], y1[k]))
            rows = (ys > lo) & (ys < hi)
            x_cross = x0[k] + (ys[rows] - y0[k]) * (x1[k] - x0[k]) / (y1[k] - y0[k])
            crossed = xs[None, :] < x_cross[:, None]
            if rule == "evenodd":
                out[rows] ^= crossed
            else:
                winding[rows] += np.where(crossed, 1 if y1[k] > y0[k] else -1, 0)
        if rule != "evenodd":
            out |= winding != 0
    return out
