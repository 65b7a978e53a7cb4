"""hamfeat._kernels.regional against the plain NumPy / OpenCV code the families were written in.

The reference functions below are the families' first implementations (features v3), kept
here and not in the package. Every kernel must reproduce them **bit for bit** (``==``, NaN
equal to NaN) on random masks (empty, one pixel, touching the frame, rings, noise) and on real
images.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import real_pairs
from hamfeat._kernels import regional as K
from hamfeat.features import FAMILIES, Context
from hamfeat.preprocess import shades_of_gray

# ----------------------------------------------------------------------------- references


def ref_zone(lab: np.ndarray, mask: np.ndarray, depth: np.ndarray) -> np.ndarray:
    t1, t2 = np.quantile(depth[mask], [1 / 3, 2 / 3])
    zones = (mask & (depth <= t1), mask & (depth > t1) & (depth <= t2), mask & (depth > t2))
    means = []
    vals: list[float] = []
    for z in zones:
        v = lab[z].astype(np.float64)
        mu = v.mean(axis=0) if len(v) else np.full(3, np.nan)
        sd = v.std(axis=0) if len(v) else np.full(3, np.nan)
        means.append(mu)
        vals += [x for pair in zip(mu, sd, strict=True) for x in pair]
    vals += list(means[2] - means[0])
    return np.array(vals)


def ref_axis_moments(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    x, y = xs - xs.mean(), ys - ys.mean()
    return np.array([xs.mean(), ys.mean(), np.mean(x * x), np.mean(x * y), np.mean(y * y)])


def ref_halves(lab: np.ndarray, mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    x, y = xs - xs.mean(), ys - ys.mean()
    cov = np.array([[np.mean(x * x), np.mean(x * y)], [np.mean(x * y), np.mean(y * y)]])
    _, vecs = np.linalg.eigh(cov)
    v = lab[ys, xs].astype(np.float64)
    out: list[float] = []
    for k in (1, 0):
        side = (x * vecs[0, 1 - k] + y * vecs[1, 1 - k]) > 0
        if side.all() or not side.any():
            out += [np.nan] * 4
            continue
        diff = v[side].mean(axis=0) - v[~side].mean(axis=0)
        out += [*np.abs(diff), float(np.sqrt((diff**2).sum()))]
    return np.array(out)


# ----------------------------------------------------------------------------- inputs


def _depth(mask: np.ndarray) -> np.ndarray:
    return cv2.distanceTransform(mask.view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_5)


def _random_lab(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    lab = np.empty((h, w, 3), np.float32)
    lab[..., 0] = rng.uniform(0, 100, (h, w))
    lab[..., 1:] = rng.uniform(-60, 60, (h, w, 2))
    return lab


def _masks(rng: np.random.Generator, h: int = 48, w: int = 64) -> list[np.ndarray]:
    yy, xx = np.mgrid[:h, :w]
    out = [np.zeros((h, w), bool)]
    one = np.zeros((h, w), bool)
    one[rng.integers(h), rng.integers(w)] = True
    out.append(one)
    two = np.zeros((h, w), bool)
    two[5, 5:7] = True
    out.append(two)
    disk = (yy - h / 2) ** 2 + (xx - w / 2) ** 2 <= (min(h, w) / 3) ** 2
    out.append(disk)
    out.append(disk & ((yy - h / 2) ** 2 + (xx - w / 2) ** 2 > (min(h, w) / 6) ** 2))  # ring
    corner = (yy + 3) ** 2 / 900 + (xx + 5) ** 2 / 1600 <= 1  # touches the frame
    out.append(corner)
    out.append(np.ones((h, w), bool))  # the whole frame
    out.append(rng.random((h, w)) < 0.3)  # noise
    blob = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 4)
    out.append(blob > np.quantile(blob, 0.4))  # ragged, several components
    return [np.ascontiguousarray(m) for m in out]


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


@pytest.fixture(scope="module")
def real_contexts() -> list[Context]:
    """Real images, colour-constancy corrected (``--color-constancy``), with their masks."""
    return [Context(shades_of_gray(rgb), m) for rgb, m in real_pairs(24)]


# ----------------------------------------------------------------------------- building blocks


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pairwise_sum_is_numpys(dtype: type) -> None:
    rng = np.random.default_rng(0)
    for n in [*range(0, 300), 1000, 8191, 8193, 20000, 100003]:
        a = (rng.standard_normal(n) * 10 ** rng.uniform(-3, 3, n)).astype(dtype)
        assert K._pairwise_sum(a, 0, n, dtype(0)) == a.sum(), n
        if n > 9:
            assert K._pairwise_sum(a, 3, n - 3, dtype(0)) == a[3:].sum(), n


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_quantile_linear_is_numpys(dtype: type) -> None:
    rng = np.random.default_rng(1)
    qs = [0.0, 0.1, 1 / 3, 0.5, 2 / 3, 0.9, 1.0]
    for n in [1, 2, 3, 5, 8, 17, 100, 1001]:
        for kind in ("normal", "ties", "sorted", "reversed"):
            a = rng.standard_normal(n) * 50
            if kind == "ties":
                a = np.round(a / 20) * 1.4
            elif kind == "sorted":
                a = np.sort(a)
            elif kind == "reversed":
                a = np.sort(a)[::-1].copy()
            a = a.astype(dtype)
            for q in qs:
                buf = a.copy()
                got = K._quantile_linear(buf, n, q)
                assert got == np.quantile(a, [q])[0], (n, kind, q)
                assert np.array_equal(np.sort(buf), np.sort(a))  # a permutation


# ----------------------------------------------------------------------------- zones


def test_zone_colour_stats_random() -> None:
    rng = np.random.default_rng(2)
    for mask in _masks(rng):
        lab = _random_lab(rng, *mask.shape)
        depth = _depth(mask)
        got = K.zone_colour_stats(lab, mask, depth)
        if not mask.any():
            assert np.isnan(got).all()
            continue
        with np.errstate(invalid="ignore", divide="ignore"):
            want = ref_zone(lab, mask, depth)
        assert _same(got, want), (mask.sum(), got - want)


def test_axis_moments_and_halves_random() -> None:
    rng = np.random.default_rng(3)
    for mask in _masks(rng):
        if not mask.any():
            assert np.isnan(K.mask_axis_moments(mask)).all()
            continue
        lab = _random_lab(rng, *mask.shape)
        assert _same(K.mask_axis_moments(mask), ref_axis_moments(mask))
        cx, cy, mxx, mxy, myy = K.mask_axis_moments(mask)
        _, vecs = np.linalg.eigh(np.array([[mxx, mxy], [mxy, myy]]))
        got = np.concatenate(
            [K.half_colour_difference(lab, mask, cx, cy, *vecs[:, j]) for j in (0, 1)]
        )
        assert _same(got, ref_halves(lab, mask)), mask.sum()


def test_zone_real_images(real_contexts: list[Context]) -> None:
    for ctx in real_contexts:
        assert _same(K.zone_colour_stats(ctx.lab, ctx.mask, ctx.depth),
                     ref_zone(ctx.lab, ctx.mask, ctx.depth))  # fmt: skip
        got = FAMILIES["zone"].compute(ctx)[21:]
        assert _same(got, ref_halves(ctx.lab, ctx.mask))


def test_zone_kernel_can_fail() -> None:
    # the comparison is sharp: moving one pixel between zones changes the result
    rng = np.random.default_rng(4)
    mask = _masks(rng)[3]
    lab = _random_lab(rng, *mask.shape)
    depth = _depth(mask)
    want = ref_zone(lab, mask, depth)
    depth2 = depth.copy()
    depth2[mask & (depth == depth[mask].max())] += 1e-3  # same zones: identical
    assert _same(K.zone_colour_stats(lab, mask, depth2), want)
    lab2 = lab.copy()
    lab2[np.argwhere(mask)[0][0], np.argwhere(mask)[0][1], 0] += np.float32(1e-3)
    assert not _same(K.zone_colour_stats(lab2, mask, depth), want)


def test_zone_validation() -> None:
    lab = np.zeros((4, 5, 3), np.float32)
    mask = np.ones((4, 5), bool)
    depth = np.zeros((4, 5), np.float32)
    with pytest.raises(TypeError, match="lab must have dtype float32"):
        K.zone_colour_stats(lab.astype(np.float64), mask, depth)
    with pytest.raises(TypeError, match="depth must have dtype float32"):
        K.zone_colour_stats(lab, mask, depth.astype(np.float64))
    with pytest.raises(ValueError, match="does not match"):
        K.zone_colour_stats(lab, mask[:3], depth)
    with pytest.raises(ValueError, match="quantiles"):
        K.zone_colour_stats(lab, mask, depth, 1.5, 0.5)


# ----------------------------------------------------------------------------- blocks


def ref_hetero(
    lab: np.ndarray, mask: np.ndarray, offset: tuple[int, int], block: int = 12
) -> np.ndarray:
    out = np.full(11, np.nan)
    r0, c0 = offset
    dr, dc = (-r0) % block, (-c0) % block
    m = mask[dr:, dc:]
    lab = lab[dr:, dc:]
    h, w = (m.shape[0] // block) * block, (m.shape[1] // block) * block
    if h == 0 or w == 0:
        return out
    mb = m[:h, :w].reshape(h // block, block, w // block, block)
    fill = mb.mean(axis=(1, 3))
    sel = fill >= 0.75
    if sel.sum() < 4:
        return out
    lb = lab[:h, :w].astype(np.float64).reshape(h // block, block, w // block, block, 3)
    wgt = mb[..., None].astype(np.float64)
    sums = (lb * wgt).sum(axis=(1, 3))[sel]
    blocks = sums / mb.sum(axis=(1, 3))[sel][:, None]
    diff = np.sqrt(((blocks[:, None, :] - blocks[None, :, :]) ** 2).sum(axis=-1))
    pairs = diff[np.triu_indices(len(blocks), k=1)]
    p90, p10 = np.percentile(blocks, [90, 10], axis=0)
    vals = [*blocks.std(axis=0), *(p90 - p10), pairs.mean(), np.percentile(pairs, 90)]
    vals += [float((pairs > t).mean()) for t in (10, 20)]
    vals.append(np.sqrt(len(blocks)))
    out[:] = vals
    return out


def _hetero(lab: np.ndarray, mask: np.ndarray, offset: tuple[int, int], block: int = 12):
    return K.block_colour_heterogeneity(lab, mask, offset, block, 0.75, np.array([10.0, 20.0]))


def test_block_heterogeneity_random() -> None:
    rng = np.random.default_rng(5)
    n_defined = 0
    for shape in ((48, 64), (150, 200)):  # the larger one has > 128 pairs of blocks
        for mask in _masks(rng, *shape):
            lab = _random_lab(rng, *shape)
            for offset in ((0, 0), (5, 7), (16, 8), (int(rng.integers(100)), 3)):
                got = _hetero(lab, mask, offset)
                want = ref_hetero(lab, mask, offset)
                assert _same(got, want), (mask.sum(), offset, got - want)
                n_defined += not np.isnan(want).all()
    assert n_defined >= 20  # most cases have >= 4 blocks
    # smooth Lab (blocks close in colour): the thresholds and quantiles see ties and near-ties
    lab = np.round(_random_lab(rng, 150, 200) / 8) * 8
    mask = np.ones((150, 200), bool)
    assert _same(_hetero(lab.astype(np.float32), mask, (0, 0)),
                 ref_hetero(lab.astype(np.float32), mask, (0, 0)))  # fmt: skip


def test_block_heterogeneity_edges() -> None:
    lab = np.zeros((30, 30, 3), np.float32)
    mask = np.ones((30, 30), bool)
    assert np.isnan(_hetero(lab, mask, (0, 0), block=31)).all()  # no block fits
    got = _hetero(lab[:24, :24].copy(), mask[:24, :24].copy(), (0, 0))  # exactly 4 blocks
    assert got[-1] == 2.0 and got[6] == 0.0
    assert np.isnan(_hetero(lab[:24, :23].copy(), mask[:24, :23].copy(), (0, 0))).all()
    with pytest.raises(ValueError, match="block"):
        _hetero(lab, mask, (0, 0), block=0)
    with pytest.raises(TypeError, match="thresholds"):
        K.block_colour_heterogeneity(lab, mask, (0, 0), 12, 0.75, np.array([10, 20]))


def test_block_heterogeneity_real_images(real_contexts: list[Context]) -> None:
    for ctx in real_contexts:
        assert _same(FAMILIES["hetero"].compute(ctx), ref_hetero(ctx.lab, ctx.mask, ctx.offset))
        whole = Context(ctx.rgb, ctx.mask, window=False)
        want = ref_hetero(whole.lab, whole.mask, (0, 0))
        assert _same(_hetero(whole.lab, whole.mask, (0, 0)), want)


def test_block_heterogeneity_can_fail() -> None:
    rng = np.random.default_rng(6)
    lab = _random_lab(rng, 48, 64)
    mask = np.ones((48, 64), bool)
    want = ref_hetero(lab, mask, (0, 0))
    lab[0, 0, 2] += np.float32(0.01)
    assert not _same(_hetero(lab, mask, (0, 0)), want)


# ----------------------------------------------------------------------------- border


def ref_border(lab: np.ndarray, mask: np.ndarray, skin: np.ndarray) -> np.ndarray:
    out = np.full(7, np.nan)
    depth = _depth(mask)
    edge = mask & (depth <= 1.0)
    if edge.sum() < 8:
        return out
    lf = cv2.GaussianBlur(lab[:, :, 0], (0, 0), 1.0, borderType=cv2.BORDER_REFLECT)
    gx = cv2.Sobel(lf, cv2.CV_32F, 1, 0, borderType=cv2.BORDER_REFLECT)
    gy = cv2.Sobel(lf, cv2.CV_32F, 0, 1, borderType=cv2.BORDER_REFLECT)
    g = np.sqrt(gx.astype(np.float64) ** 2 + gy.astype(np.float64) ** 2)
    v = g[edge]
    mean = v.mean()
    ys, xs = np.nonzero(mask)
    cy, cx = ys.mean(), xs.mean()
    ey, ex = np.nonzero(edge)
    sector = ((np.arctan2(ey - cy, ex - cx) + np.pi) / (2 * np.pi) * 8).astype(int)
    sector = np.minimum(sector, 7)
    sums = np.bincount(sector, weights=v, minlength=8)
    counts = np.bincount(sector, minlength=8)
    sec = sums[counts > 0] / counts[counts > 0]
    out_dist = cv2.distanceTransform((~mask).view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_5)
    outside = ~mask & (out_dist <= 6) & skin
    inside = mask & (depth <= 6)
    lum = lab[:, :, 0]
    delta = lum[outside].mean() - lum[inside].mean() if outside.any() else np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        out[:] = [
            mean,
            v.std(),
            v.std() / mean if mean > 0 else np.nan,
            np.percentile(v, 10),
            np.percentile(v, 90),
            sec.std() / sec.mean() if sec.mean() > 0 else np.nan,
            delta,
        ]
    return out


def _border(lab: np.ndarray, mask: np.ndarray, skin: np.ndarray) -> np.ndarray:
    # the family's composition of the two kernels
    out = np.full(7, np.nan)
    lf = cv2.GaussianBlur(lab[:, :, 0], (0, 0), 1.0, borderType=cv2.BORDER_REFLECT)
    gx = cv2.Sobel(lf, cv2.CV_32F, 1, 0, borderType=cv2.BORDER_REFLECT)
    gy = cv2.Sobel(lf, cv2.CV_32F, 0, 1, borderType=cv2.BORDER_REFLECT)
    out_dist = cv2.distanceTransform((~mask).view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_5)
    v, dy, dx, delta = K.border_samples(gx, gy, lab, mask, _depth(mask), out_dist, skin, 1, 6)
    if len(v) < 8:
        return out
    out[:6] = K.border_gradient_stats(v, np.arctan2(dy, dx), 8)
    out[6] = delta
    return out


def test_border_random() -> None:
    rng = np.random.default_rng(7)
    n_defined = 0
    for shape in ((48, 64), (150, 200)):
        for mask in _masks(rng, *shape):
            lab = _random_lab(rng, *shape)
            for skin in (np.ones(shape, bool), rng.random(shape) < 0.5, np.zeros(shape, bool)):
                got = _border(lab, mask, skin)
                want = ref_border(lab, mask, skin)
                assert _same(got, want), (mask.sum(), got - want)
                n_defined += not np.isnan(want[0])
    assert n_defined >= 15
    # a flat image: zero gradient, so the coefficients of variation are NaN
    flat = np.full((48, 64, 3), 50, np.float32)
    mask = _masks(rng)[3]
    skin = ~mask
    assert _same(_border(flat, mask, skin), ref_border(flat, mask, skin))
    assert np.isnan(_border(flat, mask, skin)[[2, 5]]).all()


def test_border_real_images(real_contexts: list[Context]) -> None:
    for ctx in real_contexts:
        want = ref_border(ctx.lab, ctx.mask, ctx.skin)
        assert _same(FAMILIES["border"].compute(ctx), want)


def test_border_validation_and_can_fail() -> None:
    v = np.array([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="same non-zero length"):
        K.border_gradient_stats(v, v[:2].copy(), 8)
    with pytest.raises(TypeError, match="angle must have dtype float64"):
        K.border_gradient_stats(v, v.astype(np.float32), 8)
    z = np.zeros((4, 5), np.float32)
    m = np.ones((4, 5), bool)
    with pytest.raises(ValueError, match="out_dist shape"):
        K.border_samples(z, z, np.zeros((4, 5, 3), np.float32), m, z, z[:3], m, 1, 6)
    rng = np.random.default_rng(8)
    mask = _masks(rng)[3]
    lab = _random_lab(rng, *mask.shape)
    want = ref_border(lab, mask, ~mask)
    lab[mask & (_depth(mask) == 1), 0] += 1  # changes the border gradients and delta_l
    got = _border(lab, mask, ~mask)
    assert not np.any(got == want)


# ----------------------------------------------------------------------------- structure


def ref_structure(lab_u8_l: np.ndarray, lab_l: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """StructureFamily's NumPy code (features v3)."""
    n = int(inner.sum())
    vals: list[float] = []
    for op in (cv2.MORPH_BLACKHAT, cv2.MORPH_TOPHAT):
        for s in (3, 7, 11):
            k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (s, s))
            r = cv2.morphologyEx(lab_u8_l, op, k, borderType=cv2.BORDER_REPLICATE)[inner]
            r = r.astype(np.float64)
            vals += [r.mean(), r.std()] + [float((r > t).mean()) for t in (5, 12)]
    for sg in (1.5, 3.0):
        g = cv2.GaussianBlur(lab_l, (0, 0), sg, borderType=cv2.BORDER_REFLECT)
        lap = cv2.Laplacian(g, cv2.CV_32F, borderType=cv2.BORDER_REFLECT) * np.float32(sg * sg)
        v = lap[inner].astype(np.float64)
        peak = cv2.dilate(lap, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE)
        blobs = (lap == peak) & (lap > 2.0) & inner
        vals += [np.clip(v, 0, None).mean(), np.clip(-v, 0, None).mean(), blobs.sum() / n * 100]
    return np.array(vals)


def test_masked_u8_stats_random() -> None:
    rng = np.random.default_rng(9)
    levels = np.array([-1, 0, 5, 12, 254, 255], np.int64)
    for mask in _masks(rng, 60, 90):
        values = np.stack(
            [
                rng.integers(0, 256, mask.shape),
                rng.integers(0, 3, mask.shape) * 6,  # few levels: ties at the thresholds
                np.full(mask.shape, 7),  # constant: std exactly 0
            ]
        ).astype(np.uint8)
        got = K.masked_u8_stats(values, mask, levels)
        assert got.shape == (3, 8)
        if not mask.any():
            assert np.isnan(got).all()
            continue
        for j in range(3):
            r = values[j][mask].astype(np.float64)
            want = [r.mean(), r.std(), *[(r > t).mean() for t in levels]]
            assert _same(got[j], want), (j, mask.sum())


def test_log_response_stats_random() -> None:
    rng = np.random.default_rng(10)
    for mask in _masks(rng, 60, 90):
        lap = rng.standard_normal((2, *mask.shape)).astype(np.float32) * 4
        lap[1] = np.round(lap[1])  # plateaus: equal neighbours, ties with the peak
        peak = np.stack([cv2.dilate(x, np.ones((3, 3), np.uint8)) for x in lap])
        got = K.log_response_stats(lap, peak, mask, 2.0)
        if not mask.any():
            assert np.isnan(got).all()
            continue
        for j in range(2):
            v = lap[j][mask].astype(np.float64)
            blobs = ((lap[j] == peak[j]) & (lap[j] > 2.0) & mask).sum()
            want = [np.clip(v, 0, None).mean(), np.clip(-v, 0, None).mean(), blobs]
            assert _same(got[j], want), (j, mask.sum())


def test_structure_real_images(real_contexts: list[Context]) -> None:
    for ctx in real_contexts:
        want = ref_structure(
            np.ascontiguousarray(ctx.lab_u8[:, :, 0]), ctx.lab[:, :, 0], ctx.interior
        )
        assert _same(FAMILIES["structure"].compute(ctx), want)


def test_structure_kernels_validation_and_can_fail() -> None:
    values = np.zeros((1, 4, 5), np.uint8)
    mask = np.ones((4, 5), bool)
    with pytest.raises(TypeError, match="levels must have dtype int64"):
        K.masked_u8_stats(values, mask, np.array([5.0]))
    with pytest.raises(ValueError, match="must be 3-D"):
        K.masked_u8_stats(values[0], mask, np.array([5]))
    lap = np.zeros((1, 4, 5), np.float32)
    with pytest.raises(ValueError, match="peak shape"):
        K.log_response_stats(lap, lap[:, :3].copy(), mask, 2.0)
    values[0, 0, 0] = 200
    got = K.masked_u8_stats(values, mask, np.array([5], np.int64))[0]
    assert got[0] == 10.0 and got[2] == 0.05
    r = values[0].astype(np.float64).ravel()
    r[1] += 1
    assert got[1] != r.std()


def test_structure_family_random_masks() -> None:
    # the morphology runs on the interior's box: masks touching the frame, rings, noise and
    # one pixel must give the whole-window values
    rng = np.random.default_rng(11)
    for mask in _masks(rng, 80, 110)[1:]:
        rgb = rng.integers(0, 256, (80, 110, 3)).astype(np.uint8)
        rgb = cv2.GaussianBlur(rgb, (0, 0), 1.5)
        for window in (False, True):
            ctx = Context(rgb, mask, window=window)
            want = ref_structure(
                np.ascontiguousarray(ctx.lab_u8[:, :, 0]), ctx.lab[:, :, 0], ctx.interior
            )
            assert _same(FAMILIES["structure"].compute(ctx), want), (mask.sum(), window)
