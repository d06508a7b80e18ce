"""Baselines for the comparison: PCA (eigenfaces) and NMF on the autoencoder's own train/test split.

Both are fitted on the training faces and scored on both sets in the
autoencoder's unit (train.evaluate): mean squared reconstruction error per
pixel, pixels scaled to [0, 1]. Their components are weight images laid out
like the autoencoder's units (train.unit_weights): one row of size*size values
each, so the same gallery and face_score apply.

Both run in torch, on the threads torch trains with (all cores by default;
one for small sets, train.threads_for), and compute what scikit-learn's PCA
and NMF(solver="mu", init="random") compute, from the same seeded start:
tests/test_baselines.py checks them against scikit-learn's. PCA comes from the
faces' Gram matrix; NMF is Lee and Seung's multiplicative updates.
(scikit-learn ran them on one BLAS thread: two threads spin-waiting for a busy
core made its SVD 30-50 times slower; a Gram matrix is one large product.)

Components are capped where more would only copy the training faces: a
mean-centred set of n faces varies in at most n - 1 directions, so PCA with
n - 1 components already reconstructs them exactly; NMF with n components can
keep each face whole as one part. The note of each result says so.

NMF runs a fixed number of multiplicative updates from a seeded random start,
not to convergence. On the 390 ORL faces (64x64, 310 of them for training)
PCA and 100 NMF updates take about 1.5 s on two idle cores (2.9 s on one),
and leave the test error (0.0154) about a tenth above where 400 updates bring
it (0.0137); the cost grows with faces times components (about 3 GFLOP an
update on ORL). Fixed counts keep the
time bounded and the result the same in every build: two calls give
bit-identical results on one machine and thread count.
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

from . import cache, progress

log = logging.getLogger(__name__)

NMF_UPDATES = 100  # multiplicative updates of the fit, and of the codes that score it
NMF_CHUNK = 20  # updates per step of the progress bar (each step also re-measures the error once)
# Entries this small are set to zero between steps: repeated multiplicative updates
# shrink unused entries geometrically, and float32 subnormals slow BLAS many-fold.
NMF_FLOOR = 1e-30
MAX_FACES = 1000  # training faces fitted on, and test faces scored, at most (seeded samples beyond): bounded time
VERSION = 3  # bump when the baselines change, to invalidate cached ones


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
    import torch

    flat = pixels.reshape(len(pixels), -1)
    test_mask = np.asarray(test_mask, bool)
    (train_rows, train_note), (test_rows, test_note) = (_sample(np.flatnonzero(m), seed, what)
                                                        for m, what in ((~test_mask, "training"), (test_mask, "test")))
    train = flat[train_rows].astype(np.float32) / np.float32(255)
    test = flat[test_rows].astype(np.float32) / np.float32(255)
    if len(train) < 2:
        log.info("baselines: skipped, %d training face(s)", len(train))
        return []
    from .train import cpu_threads, threads_for

    results = []
    with torch.no_grad(), cpu_threads(threads_for(len(train), train.shape[1], min(n_components, len(train)))):
        for fit in (_pca, _nmf):
            start = time.perf_counter()
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
    """Eigenfaces: the first ``wanted`` principal axes of the training faces, each signed so that its largest entry
    is positive (as scikit-learn's PCA signs them).

    From the faces' Gram matrix in float64 (one product of faces x pixels by its transpose, then the eigenvectors
    of a faces x faces matrix): the same axes as a thin SVD of the centred faces, at a fraction of the cost, and
    not a chain of small LAPACK steps that each wait for every thread. Axes with no variance (identical faces)
    are zero rows: they rebuild nothing, as they should.
    """
    import torch

    n, pixels = train.shape
    k, note = _cap(wanted, min(n - 1, pixels), f"{n} training faces, less their mean face, span only {n - 1} "
                   "dimensions, which that many components rebuild exactly" if n - 1 < pixels
                   else f"a crop has only {pixels} pixels")
    x = torch.from_numpy(train)
    mean = x.mean(dim=0)
    centred = (x - mean).double()
    values, vectors = torch.linalg.eigh(centred @ centred.T)
    values, vectors = values.flip(0)[:k], vectors.flip(1)[:, :k]
    singular = values.clamp_min(0).sqrt()
    kept = singular > singular[:1] * 1e-6 * n if k else singular > 0
    axes = (vectors.T @ centred) / torch.where(kept, singular, 1.0)[:, None] * kept[:, None]
    largest = axes.gather(1, axes.abs().argmax(dim=1, keepdim=True))
    components = (axes * torch.where(largest < 0, -1.0, 1.0)).float()

    def error(faces: np.ndarray) -> float:
        centred = torch.from_numpy(faces) - mean
        return _mse(centred, (centred @ components.T) @ components)

    return Baseline("PCA", components.numpy(), k, error(train), error(test) if len(test) else None, note)


def _nmf(train: np.ndarray, test: np.ndarray, wanted: int, seed: int) -> Baseline:
    import torch

    n, pixels = train.shape
    why = f"with one per training face ({n}) it can already keep each face whole"
    k, note = _cap(wanted, min(n, pixels), why if n < pixels else f"a crop has only {pixels} pixels")
    x = torch.from_numpy(train)
    parts = _nmf_parts(train, k, seed)
    codes = _nmf_codes(train, parts)
    order = np.argsort(-np.linalg.norm(codes.numpy(), axis=0) * np.linalg.norm(parts.numpy(), axis=1), kind="stable")
    note = " ".join(filter(None, [note, f"Fitted with {NMF_UPDATES} multiplicative updates, short of "
                                  "convergence to keep the build quick: a longer fit would lower both errors."]))
    test_error = _mse(torch.from_numpy(test), _nmf_codes(test, parts) @ parts) if len(test) else None
    return Baseline("NMF", parts.numpy()[order].astype(np.float32), k, _mse(x, codes @ parts), test_error, note)


EPSILON = float(np.finfo(np.float32).eps)  # a zero denominator of an update becomes this (as scikit-learn does)


def _nmf_parts(x: np.ndarray, k: int, seed: int):
    """NMF components of ``x`` (k, pixels) as a tensor, by Lee and Seung's multiplicative updates for the squared
    error, in torch (on all its threads), from scikit-learn's seeded random start ("random" init), with a
    progress bar. The same updates as scikit-learn's ``solver="mu"``: W <- W * XH'/(WHH'), H <- H * W'X/(W'WH)."""
    import torch

    avg = np.sqrt(x.mean() / k)
    rng = np.random.RandomState(seed)
    h = torch.from_numpy(np.abs(avg * rng.standard_normal((k, x.shape[1]))).astype(np.float32))
    w = torch.from_numpy(np.abs(avg * rng.standard_normal((len(x), k))).astype(np.float32))
    data = torch.from_numpy(x)
    with progress.bar(total=NMF_UPDATES, desc="NMF", unit="update") as bar:
        for _ in range(NMF_UPDATES // NMF_CHUNK):
            for _ in range(NMF_CHUNK):
                w.mul_(_ratio(data @ h.T, w @ (h @ h.T)))
                h.mul_(_ratio(w.T @ data, (w.T @ w) @ h))
            w[w < NMF_FLOOR] = 0
            h[h < NMF_FLOOR] = 0
            bar.update(NMF_CHUNK)
            if not (w.any() and h.any()):  # black crops only: nothing to find, and zeros stay zeros
                break
    return h


def _ratio(numerator, denominator):
    """numerator / denominator, in place, a zero denominator taken as EPSILON."""
    return numerator.div_(denominator.masked_fill_(denominator == 0, EPSILON))


def _nmf_codes(x: np.ndarray, parts):
    """Non-negative codes (faces, k) that rebuild ``x`` from fixed ``parts``, as NMF.transform finds them: the
    updates of W alone, from every entry at sqrt(mean / k)."""
    import torch

    k = len(parts)
    if not parts.any():
        return torch.zeros((len(x), k))
    data = torch.from_numpy(x)
    codes = torch.full((len(x), k), float(np.sqrt(x.mean() / k)))
    numerator, gram = data @ parts.T, parts @ parts.T
    for _ in range(NMF_UPDATES):
        codes.mul_(_ratio(numerator.clone(), codes @ gram))
    return codes


def _cap(wanted: int, limit: int, why: str) -> tuple[int, str]:
    """``wanted`` components, or ``limit`` and a note saying why no more."""
    if wanted <= limit:
        return wanted, ""
    return limit, f"{limit} components, not the {wanted} asked for: {why}."


def _mse(x, reconstruction) -> float:
    """Sum of squared errors over the number of pixel values, as train.evaluate reports (tensors)."""
    import torch

    diff = x - reconstruction
    return float(torch.sum(diff * diff, dtype=torch.float64) / x.numel())


# ---------------------------------------------------------------- cache


def fit_or_load(pixels: np.ndarray, test_mask: np.ndarray, n_components: int, seed: int,
                cache_dir: Path, retrain: bool = False) -> tuple[list[Baseline], bool]:
    """The baselines from ``cache_dir`` when they were fitted to these crops, split and count, else fitted;
    and whether they came from the cache."""
    stamp = {"v": VERSION, "shape": pixels.shape, "n": n_components, "seed": seed, "max": MAX_FACES,
             "updates": NMF_UPDATES, "torch": _torch_version()}
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


def _torch_version() -> str:
    import torch

    return str(torch.__version__)


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
