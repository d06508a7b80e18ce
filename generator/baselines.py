"""Baselines for the comparison: PCA (eigenfaces) and NMF on the autoencoder's own train/test split.

Both are scikit-learn's, fitted on the training faces and scored on both sets
in the autoencoder's unit (train.evaluate): mean squared reconstruction error
per pixel, pixels scaled to [0, 1]. Their components are weight images laid
out like the autoencoder's units (train.unit_weights): one row of size*size
values each, so the same gallery and face_score apply.

Components are capped where more would only copy the training faces: a
mean-centred set of n faces varies in at most n - 1 directions, so PCA with
n - 1 components already reconstructs them exactly; NMF with n components can
keep each face whole as one part. The note of each result says so.

NMF runs a fixed number of multiplicative updates from a seeded random start,
not to convergence. On the 390 ORL faces (64x64, 310 of them for training)
100 updates take about 1.6 s on two cores, about as long as training the
autoencoder, and leave the test error (0.0154) about a tenth above where 400
updates bring it (0.0137); its cost grows with faces times components.
Fixed counts keep the time bounded and the result the same in every build:
two calls give bit-identical results, and the components do not depend on
the number of BLAS threads (the errors may, around the tenth digit).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO

import numpy as np
from tqdm import tqdm

from . import cache

log = logging.getLogger(__name__)

NMF_UPDATES = 100  # multiplicative updates of the fit, and of the codes that score it
NMF_CHUNK = 20  # updates per step of the progress bar (each step also re-measures the error once)
# Entries this small are set to zero between steps: repeated multiplicative updates
# shrink unused entries geometrically, and float32 subnormals slow BLAS many-fold.
NMF_FLOOR = 1e-30
MAX_FACES = 1000  # training faces fitted on, and test faces scored, at most (seeded samples beyond): bounded time
VERSION = 2  # bump when the baselines change, to invalidate cached ones


@dataclass(frozen=True)
class Baseline:
    """A linear model of the same crops, to set the autoencoder's results beside."""

    name: str  # "PCA" or "NMF"
    components: np.ndarray  # (n_components, pixels) float32: one weight image per row, best first
    n_components: int
    train_error: float  # mean squared error per pixel, pixels in [0, 1]: train.evaluate's unit
    test_error: float | None  # the same on the held-out faces; None without any
    note: str  # what the reader must know: components capped, fit stopped early


def fit_baselines(pixels: np.ndarray, test_mask: np.ndarray, n_components: int, seed: int) -> list[Baseline]:
    """PCA and NMF with ``n_components`` each (capped, see the notes), fitted on the faces outside ``test_mask``.

    ``pixels`` holds the uint8 crops, (N, size, size) or (N, pixels). With fewer
    than two training faces there is nothing to compare, and the list is empty.
    """
    from threadpoolctl import threadpool_limits  # installed with scikit-learn

    flat = pixels.reshape(len(pixels), -1)
    test_mask = np.asarray(test_mask, bool)
    (train_rows, train_note), (test_rows, test_note) = (_sample(np.flatnonzero(m), seed, what)
                                                        for m, what in ((~test_mask, "training"), (test_mask, "test")))
    train = flat[train_rows].astype(np.float32) / np.float32(255)
    test = flat[test_rows].astype(np.float32) / np.float32(255)
    if len(train) < 2:
        log.info("baselines: skipped, %d training face(s)", len(train))
        return []
    results = []
    for fit in (_pca, _nmf):
        start = time.perf_counter()
        # One BLAS thread: LAPACK's SVD and NMF's products of this size run about as fast on one, and two threads
        # spin-waiting for a busy core made them 30-50 times slower (ORL's SVD: 7.5 s against 0.15 s).
        with threadpool_limits(1, user_api="blas"):
            found = fit(train, test, n_components, seed)
        results.append(Baseline(found.name, found.components, found.n_components, found.train_error,
                                found.test_error, " ".join(filter(None, [found.note, train_note, test_note]))))
        log.info("baselines: %s with %d components in %.2f s", results[-1].name, results[-1].n_components,
                 time.perf_counter() - start)
    return results


def _sample(rows: np.ndarray, seed: int, what: str) -> tuple[np.ndarray, str]:
    """At most MAX_FACES of ``rows`` (a seeded sample, in order), and a note when it is a sample."""
    if len(rows) <= MAX_FACES:
        return rows, ""
    chosen = np.sort(np.random.default_rng(seed).choice(rows, MAX_FACES, replace=False))
    return chosen, f"Measured on a random {MAX_FACES} of the {len(rows)} {what} faces, to bound the time."


def _pca(train: np.ndarray, test: np.ndarray, wanted: int, seed: int) -> Baseline:
    from sklearn.decomposition import PCA

    n, pixels = train.shape
    k, note = _cap(wanted, min(n - 1, pixels), f"{n} training faces, less their mean face, span only {n - 1} "
                   "dimensions, which that many components rebuild exactly" if n - 1 < pixels
                   else f"a crop has only {pixels} pixels")
    with np.errstate(divide="ignore", invalid="ignore"):  # "auto": an exact SVD for a few hundred faces
        model = PCA(k, svd_solver="auto", random_state=seed).fit(train)  # errstate: identical faces have no variance

    def error(x: np.ndarray) -> float:
        return _mse(x, model.inverse_transform(model.transform(x)))

    return Baseline("PCA", model.components_.astype(np.float32), k, error(train),
                    error(test) if len(test) else None, note)


def _nmf(train: np.ndarray, test: np.ndarray, wanted: int, seed: int) -> Baseline:
    n, pixels = train.shape
    why = f"with one per training face ({n}) it can already keep each face whole"
    k, note = _cap(wanted, min(n, pixels), why if n < pixels else f"a crop has only {pixels} pixels")
    parts = _nmf_parts(train, k, seed)
    codes = _nmf_codes(train, parts)
    order = np.argsort(-np.linalg.norm(codes, axis=0) * np.linalg.norm(parts, axis=1), kind="stable")
    note = " ".join(filter(None, [note, f"Fitted with {NMF_UPDATES} multiplicative updates, short of "
                                  "convergence to keep the build quick: a longer fit would lower both errors."]))
    return Baseline("NMF", parts[order].astype(np.float32), k, _mse(train, codes @ parts),
                    _mse(test, _nmf_codes(test, parts) @ parts) if len(test) else None, note)


def _nmf_parts(x: np.ndarray, k: int, seed: int) -> np.ndarray:
    """NMF components of ``x`` (k, pixels), from a seeded random start, with a progress bar."""
    from sklearn.decomposition import non_negative_factorization

    w = h = None
    with tqdm(total=NMF_UPDATES, desc="NMF", unit="update", disable=None) as bar:
        for _ in range(NMF_UPDATES // NMF_CHUNK):
            w, h, _ = non_negative_factorization(x, w, h, k, init="random" if w is None else "custom",
                                                 solver="mu", max_iter=NMF_CHUNK, tol=0, random_state=seed)
            w[w < NMF_FLOOR] = 0
            h[h < NMF_FLOOR] = 0
            bar.update(NMF_CHUNK)
            if not (w.any() and h.any()):  # black crops only: nothing to find, and zeros stay zeros
                break
    return h


def _nmf_codes(x: np.ndarray, parts: np.ndarray) -> np.ndarray:
    """Non-negative codes (faces, k) that rebuild ``x`` from fixed ``parts``, as NMF.transform finds them."""
    from sklearn.decomposition import non_negative_factorization

    if not parts.any():
        return np.zeros((len(x), len(parts)), x.dtype)
    codes, _, _ = non_negative_factorization(x, H=parts, n_components=len(parts), update_H=False, solver="mu",
                                             max_iter=NMF_UPDATES, tol=0)
    return codes


def _cap(wanted: int, limit: int, why: str) -> tuple[int, str]:
    """``wanted`` components, or ``limit`` and a note saying why no more."""
    if wanted <= limit:
        return wanted, ""
    return limit, f"{limit} components, not the {wanted} asked for: {why}."


def _mse(x: np.ndarray, reconstruction: np.ndarray) -> float:
    """Sum of squared errors over the number of pixel values, as train.evaluate reports."""
    diff = x - reconstruction
    return float(np.sum(diff * diff, dtype=np.float64) / x.size)


# ---------------------------------------------------------------- cache


def fit_or_load(pixels: np.ndarray, test_mask: np.ndarray, n_components: int, seed: int,
                cache_dir: Path, retrain: bool = False) -> tuple[list[Baseline], bool]:
    """The baselines from ``cache_dir`` when they were fitted to these crops, split and count, else fitted;
    and whether they came from the cache."""
    stamp = {"v": VERSION, "shape": pixels.shape, "n": n_components, "seed": seed, "max": MAX_FACES,
             "updates": NMF_UPDATES, "sklearn": _sklearn_version()}
    key = cache.key(stamp, np.ascontiguousarray(pixels), np.ascontiguousarray(test_mask, bool))
    path = cache.entry_path(cache_dir, cache.BASELINES, key, ".npz")
    if not retrain:
        cached = cache.read(path, partial(_load, key), "baselines cache")
        if cached is not None:
            log.info("baselines: loaded from cache %s", path.name)
            return cached, True
    fitted = fit_baselines(pixels, test_mask, n_components, seed)
    cache.write(path, partial(_save, key, fitted), "baselines cache")
    return fitted, False


def _sklearn_version() -> str:
    from importlib.metadata import version

    return version("scikit-learn")


def _load(key: str, path: Path) -> list[Baseline]:
    """The fits in ``path``; ValueError when they were made for other inputs."""
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        if meta["key"] != key:
            raise ValueError("made for other inputs")
        return [Baseline(m["name"], data[f"components{i}"], m["n_components"], m["train_error"],
                         m["test_error"], m["note"]) for i, m in enumerate(meta["baselines"])]


def _save(key: str, baselines: list[Baseline], handle: IO[bytes]) -> None:
    meta = {"key": key, "baselines": [{"name": b.name, "n_components": b.n_components, "train_error": b.train_error,
                                       "test_error": b.test_error, "note": b.note} for b in baselines]}
    arrays = {f"components{i}": b.components for i, b in enumerate(baselines)}
    np.savez(handle, meta=np.array(json.dumps(meta)), **arrays)
