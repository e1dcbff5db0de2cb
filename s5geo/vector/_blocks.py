"""Block-wise polygonising of a class map with polygons dissolved across block borders.

Every block is polygonised with ``rasterio.features.shapes`` in *pixel* coordinates (x = column,
y = row), where all vertices are small integers and therefore exact in float64: pieces of one region
cut by a block line share bit-identical edges, so their union has no slivers and no gaps. The caller
maps the finished polygons to CRS coordinates with one affine transform.

Pieces that touch no interior block edge are complete regions and are emitted at once. Pieces
that touch an interior edge are kept pending and linked by a union-find over the pixel pairs on both
sides of each edge (same class, 4-connected, as ``shapes`` groups pixels): links come from pixels,
not from geometry predicates, so two regions touching only at a corner are never merged. Blocks
are visited row by row; after each block row, every pending component that does not reach the
bottom edge of that row can grow no further, so it is unioned and emitted. Memory holds one block,
the pending pieces of the current block row and those crossing its bottom edge, plus the finished
polygons.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import shapely
from affine import Affine
from rasterio.features import shapes, sieve

#: ``read(row0, row1, col0, col1) -> (classes, valid)`` for a window clipped to the raster.
BlockReader = Callable[[int, int, int, int], tuple[np.ndarray, np.ndarray]]

#: Largest sieve margin (pixels) read around a block; see ``polygonize_blocks``.
MAX_SIEVE_MARGIN = 256


def shapes_to_polygons(data: np.ndarray, valid: np.ndarray, col0: int, row0: int):
    """Polygonise one block in pixel coordinates (4-connectivity).

    Returns:
        ``(polygons, values)``: shapely Polygons and their class values as numpy arrays.
    """
    coords: list[tuple[float, float]] = []
    ring_offsets = [0]
    geom_offsets = [0]
    values: list[float] = []
    transform = Affine.translation(col0, row0)
    for geom, value in shapes(data, mask=valid, connectivity=4, transform=transform):
        for ring in geom["coordinates"]:
            coords.extend(ring)
            ring_offsets.append(len(coords))
        geom_offsets.append(len(ring_offsets) - 1)
        values.append(value)
    if not values:
        return np.empty(0, dtype=object), np.empty(0, dtype=np.int64)
    # Building all polygons at once from flat arrays is several times faster than shape() per dict.
    polygons = shapely.from_ragged_array(
        shapely.GeometryType.POLYGON,
        np.asarray(coords, dtype=np.float64),
        (np.asarray(ring_offsets, dtype=np.int64), np.asarray(geom_offsets, dtype=np.int64)),
    )
    return polygons, np.asarray(values).astype(np.int64)


@dataclass
class _Components:
    """Union-find over pending pieces, each with its polygon and class."""

    parent: dict[int, int] = field(default_factory=dict)
    members: dict[int, list[int]] = field(default_factory=dict)
    geoms: dict[int, object] = field(default_factory=dict)
    values: dict[int, int] = field(default_factory=dict)
    next_id: int = 0

    def add(self, polygons: np.ndarray, values: np.ndarray) -> np.ndarray:
        ids = np.arange(self.next_id, self.next_id + len(polygons), dtype=np.int64)
        self.next_id += len(polygons)
        for i, geom, value in zip(ids.tolist(), polygons, values.tolist(), strict=True):
            self.parent[i] = i
            self.members[i] = [i]
            self.geoms[i] = geom
            self.values[i] = value
        return ids

    def find(self, i: int) -> int:
        parent = self.parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union_pairs(self, a: np.ndarray, b: np.ndarray) -> None:
        if len(a) == 0:
            return
        pairs = np.unique(np.stack([a, b], axis=1), axis=0)
        for x, y in pairs.tolist():
            rx, ry = self.find(x), self.find(y)
            if rx == ry:
                continue
            if len(self.members[rx]) < len(self.members[ry]):
                rx, ry = ry, rx
            self.parent[ry] = rx
            self.members[rx].extend(self.members.pop(ry))

    def pop_all_except(self, keep_roots: set[int]) -> Iterable[tuple[object, int]]:
        """Union and remove every component whose root is not in ``keep_roots``."""
        for root in [r for r in self.members if r not in keep_roots]:
            ids = self.members.pop(root)
            parts = [self.geoms.pop(i) for i in ids]
            value = self.values[root]
            for i in ids:
                del self.parent[i]
                del self.values[i]
            for part in _union_pieces(parts):
                yield part, value


def _union_pieces(parts: list) -> np.ndarray:
    """Union edge-adjacent pieces of one region into its polygon.

    Only the exterior rings go through the (robust overlay) union: a piece's holes lie inside its
    own block and never touch a block edge, so they are holes of the union too and are added back
    afterwards. This keeps the overlay small for regions riddled with small holes.
    """
    if len(parts) == 1:
        return np.asarray(parts, dtype=object)
    pieces = np.asarray(parts, dtype=object)
    # Vertices along a shared block line need not match, so coverage_union does not apply.
    merged = shapely.get_parts(shapely.union_all(shapely.polygons(shapely.get_exterior_ring(pieces))))
    rings = shapely.get_rings(pieces)
    n_rings = shapely.get_num_interior_rings(pieces) + 1
    is_hole = np.ones(len(rings), dtype=bool)
    is_hole[np.cumsum(n_rings) - n_rings] = False
    holes = rings[is_hole]
    if len(merged) != 1 or len(holes) == 0:
        # Not expected (pieces are linked through shared edges); fall back to the full union.
        return shapely.get_parts(shapely.union_all(pieces)) if len(merged) != 1 else merged
    own = shapely.get_rings(merged[0])
    return np.array([shapely.polygons(own[0], [*own[1:], *holes])], dtype=object)


def _border_ids(
    polygons: np.ndarray, ids: np.ndarray, r0: int, r1: int, c0: int, c1: int
) -> dict[str, np.ndarray]:
    """Id of the piece holding each pixel along the four block edges (-1 where none).

    A pixel on the top row belongs to the piece whose exterior ring runs along that pixel's top
    side (the block edge bounds every piece, and holes never reach it), so the pixel-to-piece map
    is read off the ring segments lying on each edge; all coordinates are exact integers.
    """
    h, w = r1 - r0, c1 - c0
    out = {name: np.full(n, -1, dtype=np.int64) for name, n in
           (("top", w), ("bottom", w), ("left", h), ("right", h))}  # fmt: skip
    if len(polygons) == 0:
        return out
    coords, index = shapely.get_coordinates(shapely.get_exterior_ring(polygons), return_index=True)
    same = index[:-1] == index[1:]
    owner = ids[index[:-1]]
    xa, ya, xb, yb = coords[:-1, 0], coords[:-1, 1], coords[1:, 0], coords[1:, 1]
    horizontal = same & (ya == yb)
    vertical = same & (xa == xb)
    for name, sel, lo, hi, offset in (
        ("top", horizontal & (ya == r0), np.minimum(xa, xb), np.maximum(xa, xb), c0),
        ("bottom", horizontal & (ya == r1), np.minimum(xa, xb), np.maximum(xa, xb), c0),
        ("left", vertical & (xa == c0), np.minimum(ya, yb), np.maximum(ya, yb), r0),
        ("right", vertical & (xa == c1), np.minimum(ya, yb), np.maximum(ya, yb), r0),
    ):
        start = (lo[sel] - offset).astype(np.int64)
        length = (hi[sel] - lo[sel]).astype(np.int64)
        total = int(length.sum())
        if total == 0:
            continue
        first = np.repeat(start - np.cumsum(length) + length, length)
        out[name][first + np.arange(total)] = np.repeat(owner[sel], length)
    return out


def polygonize_blocks(
    read: BlockReader,
    height: int,
    width: int,
    block_size: int,
    *,
    sieve_pixels: int = 0,
    on_block: Callable[[], None] | None = None,
    finish: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Polygonise a class map block by block, dissolving regions across block borders.

    Args:
        read: reads classes and a validity mask for a window (rows ``[r0, r1)``, cols ``[c0, c1)``).
        height: raster height in pixels.
        width: raster width in pixels.
        block_size: side of the square blocks in pixels.
        sieve_pixels: if > 1, regions of fewer pixels are merged into their largest neighbour
            (``rasterio.features.sieve``, 4-connectivity) before polygonising. Each block is
            sieved with a margin of ``min(sieve_pixels, MAX_SIEVE_MARGIN)`` pixels around it, so
            every region touching the block is seen whole or with more pixels than the threshold:
            an isolated small region (one neighbour) is removed exactly as by a whole-raster sieve.
            Not exact: GDAL merges small regions one after another into the *largest* neighbour,
            and neighbour sizes and merge order can differ when the window cuts them, so a small
            region with several neighbours may join another neighbour than in a whole-raster
            sieve (on noisy test maps about 1-2% of the sieved pixels, all near block lines).
            Above ``MAX_SIEVE_MARGIN`` pixels, a region larger than the threshold but thinner than
            it inside the window (a long 1-pixel line) may also be removed.
        on_block: called after each block (progress).
        finish: applied to each batch of finished polygons (still in pixel coordinates), e.g.
            the map to CRS coordinates; done per batch so two copies of all polygons never
            coexist.

    Returns:
        ``(polygons, values)`` in pixel coordinates, one polygon per 4-connected region.
    """
    out_geoms: list[np.ndarray] = []
    out_values: list[np.ndarray] = []
    comps = _Components()
    margin = min(sieve_pixels, MAX_SIEVE_MARGIN) if sieve_pixels > 1 else 0
    frontier_ids: np.ndarray | None = None
    frontier_vals: np.ndarray | None = None

    for r0 in range(0, height, block_size):
        r1 = min(r0 + block_size, height)
        bottom_ids = np.full(width, -1, dtype=np.int64)
        bottom_vals = np.zeros(width, dtype=np.int64)
        left_ids: np.ndarray | None = None
        left_vals: np.ndarray | None = None
        for c0 in range(0, width, block_size):
            c1 = min(c0 + block_size, width)
            data, valid = _read_sieved(read, r0, r1, c0, c1, height, width, margin, sieve_pixels)
            polygons, values = shapes_to_polygons(data, valid, c0, r0)
            top, bottom, left, right = r0 > 0, r1 < height, c0 > 0, c1 < width
            bounds = shapely.bounds(polygons) if len(polygons) else np.empty((0, 4))
            touches = (
                (top & (bounds[:, 1] <= r0))
                | (bottom & (bounds[:, 3] >= r1))
                | (left & (bounds[:, 0] <= c0))
                | (right & (bounds[:, 2] >= c1))
            )
            out_geoms.append(_finish(finish, polygons[~touches]))
            out_values.append(values[~touches])
            pending, pending_vals = polygons[touches], values[touches]
            ids = comps.add(pending, pending_vals)

            border = _border_ids(pending, ids, r0, r1, c0, c1)

            if left:
                assert left_ids is not None and left_vals is not None
                a, b = border["left"], left_ids
                link = (a >= 0) & (b >= 0) & (data[:, 0] == left_vals)
                comps.union_pairs(a[link], b[link])
            if top:
                assert frontier_ids is not None and frontier_vals is not None
                a, b = border["top"], frontier_ids[c0:c1]
                link = (a >= 0) & (b >= 0) & (data[0, :] == frontier_vals[c0:c1])
                comps.union_pairs(a[link], b[link])
            if bottom:
                bottom_ids[c0:c1] = border["bottom"]
                bottom_vals[c0:c1] = data[-1, :]
            if right:
                left_ids, left_vals = border["right"], data[:, -1].astype(np.int64)
            if on_block is not None:
                on_block()

        keep = {comps.find(i) for i in np.unique(bottom_ids[bottom_ids >= 0]).tolist()}
        done = list(comps.pop_all_except(keep))
        if done:
            out_geoms.append(_finish(finish, np.array([g for g, _ in done], dtype=object)))
            out_values.append(np.array([v for _, v in done], dtype=np.int64))
        frontier_ids, frontier_vals = bottom_ids, bottom_vals

    if not out_geoms:
        return np.empty(0, dtype=object), np.empty(0, dtype=np.int64)
    return np.concatenate(out_geoms), np.concatenate(out_values)


def _finish(finish: Callable[[np.ndarray], np.ndarray] | None, geoms: np.ndarray) -> np.ndarray:
    return geoms if finish is None or len(geoms) == 0 else finish(geoms)


def _read_sieved(
    read: BlockReader,
    r0: int,
    r1: int,
    c0: int,
    c1: int,
    height: int,
    width: int,
    margin: int,
    sieve_pixels: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Read a block, sieved with ``margin`` pixels of context when sieving is on."""
    if margin == 0:
        data, valid = read(r0, r1, c0, c1)
        return _polygonizable(data), valid
    rr0, rr1 = max(0, r0 - margin), min(height, r1 + margin)
    cc0, cc1 = max(0, c0 - margin), min(width, c1 + margin)
    data, valid = read(rr0, rr1, cc0, cc1)
    data = sieve(_polygonizable(data), sieve_pixels, mask=valid, connectivity=4)
    core = (slice(r0 - rr0, r1 - rr0), slice(c0 - cc0, c1 - cc0))
    return np.ascontiguousarray(data[core]), np.ascontiguousarray(valid[core])


def _polygonizable(data: np.ndarray) -> np.ndarray:
    """Return ``data`` in a dtype GDAL polygonize and sieve accept."""
    if data.dtype in (np.uint8, np.uint16, np.int16, np.int32):
        return data
    return data.astype(np.int32)
