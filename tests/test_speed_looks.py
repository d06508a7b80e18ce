"""The looks search's faster paths give the numbers of the plain numpy they replace (issue 14): the same rows, and
the same floats bit for bit where the order of the sums is kept, or to float32 rounding where a matrix product
or a spread about the known composite sums in another order."""

from __future__ import annotations

import numpy as np
import pytest
from facetrend import looks


def plain_standardise(pixels: np.ndarray) -> np.ndarray:
    x = pixels.reshape(len(pixels), -1).astype(np.float32)
    x -= x.mean(axis=1, keepdims=True)
    x /= x.std(axis=1, keepdims=True) + 1e-6
    x -= x.mean(axis=0)
    x /= x.std(axis=0) + 1e-6
    return x


def plain_stats(z: np.ndarray, groups: np.ndarray):
    k = max(1, int(looks.REGION * z.shape[1]))
    g = z[groups]
    c = g.mean(axis=1)
    r = np.argpartition(-np.abs(c), k - 1, axis=1)[:, :k]
    sd = np.take_along_axis(g, r[:, None, :], axis=2).std(axis=1)
    return c, (np.abs(np.take_along_axis(c, r, axis=1)) / (sd + 1e-6)).mean(axis=1).astype(np.float64), r, sd


@pytest.mark.parametrize("faces", [9, 390, 2 * looks.ROWS_CHUNK + 5])
def test_standardise_is_the_plain_formula_bit_for_bit_in_chunks(faces):
    pixels = np.random.default_rng(faces).integers(0, 256, (faces, 16, 16), dtype=np.uint8)
    assert np.array_equal(looks.standardise(pixels), plain_standardise(pixels))


def test_column_statistics_in_chunks_are_numpys_own():
    x = (np.random.default_rng(1).standard_normal((3 * looks.ROWS_CHUNK + 7, 64)) * 40 + 100).astype(np.float32)
    mean, sd = looks.column_mean_std(lambda s, e: x[s:e], len(x))
    assert np.array_equal(mean, x.mean(axis=0)) and np.array_equal(sd, x.std(axis=0))
    assert looks.column_mean_std(lambda s, e: x[s:e], len(x), sd=False)[1] is None


@pytest.mark.parametrize(("faces", "top", "groups"), [(390, 97, 150), (390, 20, 150), (60, 3, 7), (40, 1, 2)])
def test_group_statistics_are_the_plain_formulas(faces, top, groups):
    """Both ways to the composites (a product among few faces, a sum among many: 390 faces in groups of 97 and
    of 20) give the plain formulas' composites, regions, spreads and consistency."""
    rng = np.random.default_rng(top)
    z = rng.standard_normal((faces, 256)).astype(np.float32)
    rows = np.sort(np.stack([rng.choice(faces, top, replace=False) for _ in range(groups)]), axis=1)
    offsets, consistency, regions, spreads = looks._stats(z, rows)
    c, want_consistency, r, sd = plain_stats(z, rows)
    assert offsets.dtype == np.float32 and consistency.dtype == np.float64
    assert np.allclose(offsets, c, rtol=1e-5, atol=1e-6)
    assert np.array_equal(np.sort(regions, axis=1), np.sort(r, axis=1))
    order = np.argsort(regions, axis=1), np.argsort(r, axis=1)
    got_sd, want_sd = np.take_along_axis(spreads, order[0], axis=1), np.take_along_axis(sd, order[1], axis=1)
    assert np.allclose(got_sd, want_sd, rtol=1e-4, atol=1e-5)
    assert np.allclose(consistency, want_consistency, rtol=1e-4)


@pytest.mark.parametrize("levels", [None, 2, 1])  # continuous, many ties, nearly all tied (ReLU zeros too)
def test_top_rows_are_a_stable_sorts_rows_ties_to_the_lower_index(levels):
    rng = np.random.default_rng(3)
    acts = rng.standard_normal((300, 40)).astype(np.float32)
    if levels:
        acts = np.round(acts * levels) / levels
    acts = np.maximum(acts, 0)
    for top in (1, 7, 75, 299, 300, 400):
        want = np.sort(np.argsort(-acts, axis=0, kind="stable")[:top].T, axis=1)
        assert np.array_equal(looks.top_rows(acts, top), want)


def test_the_search_leaves_numpys_threads_as_it_found_them():
    from threadpoolctl import threadpool_info

    before = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (40, 8, 8), dtype=np.uint8)
    acts = rng.random((40, 6)).astype(np.float32)
    looks.find_looks(pixels, acts, lambda px: rng.random((len(px), 6)).astype(np.float32), 10)
    assert [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"] == before


def test_a_small_search_runs_numpys_products_on_one_thread_and_a_large_one_as_it_was():
    from threadpoolctl import threadpool_info

    seen = []

    def encode(px):
        seen.extend(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")
        return np.random.default_rng(len(px)).random((len(px), 6)).astype(np.float32)

    rng = np.random.default_rng(0)
    looks.find_looks(rng.integers(0, 256, (40, 8, 8), dtype=np.uint8), rng.random((40, 6)).astype(np.float32),
                     encode, 10)
    assert seen and set(seen) == {1}
    assert looks.blas_threads(390, 64 * 64, 400) == 1  # the ORL report: short products, many of them
    assert looks.blas_threads(20_000, 64 * 64, 400) is None  # long products: every thread the machine gives
