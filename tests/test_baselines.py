import json
from pathlib import Path

import numpy as np
import pytest
from facetrend import baselines
from facetrend.baselines import fit_baselines

SIDE = 16


def _faces(n: int = 40, rank: int = 5, seed: int = 0) -> np.ndarray:
    """Grey uint8 images built from a few non-negative parts, plus a little noise."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, rank)) @ rng.random((rank, SIDE * SIDE)) / rank + rng.normal(0, 0.03, (n, SIDE * SIDE))
    return np.clip(x * 255, 0, 255).astype(np.uint8).reshape(n, SIDE, SIDE)


def _mask(n: int = 40, test: int = 8) -> np.ndarray:
    return np.arange(n) >= n - test


def _by_name(pixels: np.ndarray, mask: np.ndarray, k: int, seed: int = 0) -> dict:
    return {b.name: b for b in fit_baselines(pixels, mask, k, seed)}


def test_pca_test_error_falls_as_components_grow():
    faces, mask = _faces(), _mask()
    errors = [_by_name(faces, mask, k)["PCA"].test_error for k in (1, 2, 4, 8)]
    assert all(a > b for a, b in zip(errors, errors[1:], strict=False)), errors


def test_as_many_pca_components_as_training_faces_rebuild_them_exactly():
    faces, mask = _faces(), _mask()
    pca = _by_name(faces, mask, int((~mask).sum()))["PCA"]
    assert pca.train_error < 1e-10
    assert pca.test_error > 1e-4  # held-out faces are not in the span


def test_components_are_capped_with_a_note_when_more_are_asked_for_than_faces():
    faces, mask = _faces(), _mask()  # 32 training faces
    found = _by_name(faces, mask, 50)
    assert found["PCA"].n_components == 31 and found["NMF"].n_components == 32
    for b in found.values():
        assert b.components.shape == (b.n_components, SIDE * SIDE) and b.components.dtype == np.float32
        assert "not the 50 asked for" in b.note
    assert "not the" not in _by_name(faces, mask, 10)["PCA"].note


def test_nmf_parts_are_non_negative_and_beat_the_mean_face():
    faces, mask = _faces(), _mask()
    nmf = _by_name(faces, mask, 5)["NMF"]
    assert (nmf.components >= 0).all() and nmf.components.any()
    x = faces.reshape(len(faces), -1) / 255
    mean_face_error = ((x[mask] - x[~mask].mean(axis=0)) ** 2).mean()
    assert 0 < nmf.test_error < mean_face_error


def test_errors_are_mean_squared_per_pixel_in_zero_one_like_evaluate():
    # Training faces vary only left against right; the test faces also top against bottom,
    # which no component fitted on them can rebuild: their error is known by hand.
    left = np.where(np.arange(SIDE) < SIDE // 2, 1, -1)[None, :].repeat(SIDE, 0)
    top = left.T
    train = [128 + a * left for a in (-40, -20, 20, 40)]
    test = [128 + 20 * top, 128 + 30 * top + 10 * left]
    pca = _by_name(np.array(train + test, np.uint8), _mask(6, 2), 1)["PCA"]
    assert pca.train_error < 1e-10
    assert pca.test_error == pytest.approx((20**2 + 30**2) / 2 / 255**2, rel=1e-5)

    # NMF: parts fitted on a left-half face can rebuild nothing of a right-half one.
    half = np.where(left > 0, 200, 0)
    nmf = _by_name(np.array([half] * 4 + [np.where(left < 0, 100, 0)], np.uint8), _mask(5, 1), 1)["NMF"]
    assert nmf.train_error < 1e-6
    assert nmf.test_error == pytest.approx((100 / 255) ** 2 / 2, rel=1e-5)


def test_two_fits_give_identical_results_and_the_seed_is_used():
    faces, mask = _faces(), _mask()
    a, b = fit_baselines(faces, mask, 6, seed=3), fit_baselines(faces, mask, 6, seed=3)
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.components, y.components)
        assert (x.train_error, x.test_error, x.note) == (y.train_error, y.test_error, y.note)
    other = _by_name(faces, mask, 6, seed=4)["NMF"]
    assert not np.array_equal(other.components, _by_name(faces, mask, 6, seed=3)["NMF"].components)


def test_without_test_faces_there_is_no_test_error():
    for b in fit_baselines(_faces(), np.zeros(40, bool), 4, 0):
        assert b.test_error is None and b.train_error > 0


def test_fewer_than_two_training_faces_give_no_baselines():
    assert fit_baselines(_faces(3), np.array([False, True, True]), 4, 0) == []


def test_baselines_are_cached_by_the_models_inputs(tmp_path: Path, monkeypatch):
    pixels = np.random.default_rng(0).integers(0, 256, (30, 8, 8), dtype=np.uint8)
    mask = np.arange(30) % 5 == 0
    first, cached = baselines.fit_or_load(pixels, mask, 6, 0, tmp_path)
    assert not cached
    monkeypatch.setattr(baselines, "fit_baselines", lambda *a: pytest.fail("fitted again"))
    again, cached = baselines.fit_or_load(pixels, mask, 6, 0, tmp_path)
    assert cached
    assert [(b.name, b.n_components, b.test_error, b.note) for b in again] == \
        [(b.name, b.n_components, b.test_error, b.note) for b in first]
    assert all(np.array_equal(a.components, b.components) for a, b in zip(first, again, strict=True))
    with pytest.raises(pytest.fail.Exception):
        baselines.fit_or_load(pixels, ~mask, 6, 0, tmp_path)  # another split: fitted afresh
    next((tmp_path / "baselines").glob("*.npz")).write_bytes(b"not a cache file")
    with pytest.raises(pytest.fail.Exception):  # a corrupt cache file is fitted again, not fatal
        baselines.fit_or_load(pixels, mask, 6, 0, tmp_path)


def test_a_report_shows_pca_and_nmf_beside_the_autoencoder(small_content: Path, tmp_path: Path):
    from facetrend.build import BuildOptions, build

    build(BuildOptions(content=small_content, out=tmp_path / "site", cache=tmp_path / "cache"))
    site = tmp_path / "site" / "small"
    doc = json.loads((site / "report.json").read_text())
    assert [b["name"] for b in doc["baselines"]] == ["PCA", "NMF"]
    assert all(b["test_error"] > 0 for b in doc["baselines"])
    html = (site / "index.html").read_text()
    assert "Compared with PCA and NMF" in html
    assert all((site / "img" / f"{name}.webp").is_file() for name in ("pca", "nmf", "autoencoder"))


def test_large_sets_are_sampled_and_the_note_says_so(monkeypatch):
    monkeypatch.setattr(baselines, "MAX_FACES", 20)
    found = _by_name(_faces(60), _mask(60, 25), 4)
    assert "random 20 of the 35 training faces" in found["PCA"].note
    assert "random 20 of the 25 test faces" in found["NMF"].note


def test_a_damaged_baselines_cache_is_fitted_again(tmp_path: Path):
    pixels = np.random.default_rng(0).integers(0, 256, (30, 8, 8), dtype=np.uint8)
    mask = np.arange(30) % 5 == 0
    first, _ = baselines.fit_or_load(pixels, mask, 6, 0, tmp_path)
    path = next((tmp_path / "baselines").glob("*.npz"))
    path.write_bytes(path.read_bytes()[:200])  # truncated: not a zip any more
    again, cached = baselines.fit_or_load(pixels, mask, 6, 0, tmp_path)
    assert not cached
    assert [b.test_error for b in again] == [b.test_error for b in first]


def test_pca_and_nmf_match_scikit_learns_fits():
    """The torch fits compute scikit-learn's PCA and NMF(solver="mu", init="random"), from the same start."""
    decomposition = pytest.importorskip("sklearn.decomposition")
    faces, mask = _faces(60, 6, seed=2), _mask(60, 12)
    found = _by_name(faces, mask, 8, seed=4)
    x = faces.reshape(len(faces), -1).astype(np.float32) / np.float32(255)
    train, test = x[~mask], x[mask]
    pca = decomposition.PCA(8, svd_solver="full").fit(train)
    assert np.allclose(found["PCA"].components, pca.components_, atol=2e-4)  # signs as scikit-learn's too
    test_error = ((test - pca.inverse_transform(pca.transform(test))) ** 2).mean()
    assert found["PCA"].test_error == pytest.approx(test_error, rel=1e-4)
    w = h = None
    for _ in range(baselines.NMF_UPDATES // baselines.NMF_CHUNK):
        w, h, _ = decomposition.non_negative_factorization(
            train, w, h, 8, init="random" if w is None else "custom", solver="mu", max_iter=baselines.NMF_CHUNK,
            tol=0, random_state=4)
        w[w < baselines.NMF_FLOOR], h[h < baselines.NMF_FLOOR] = 0, 0
    order = np.argsort(-np.linalg.norm(w, axis=0) * np.linalg.norm(h, axis=1), kind="stable")
    assert np.allclose(found["NMF"].components, h[order], rtol=1e-3, atol=1e-5)
    for faces_, error in ((train, found["NMF"].train_error), (test, found["NMF"].test_error)):
        codes, _, _ = decomposition.non_negative_factorization(faces_, H=h, n_components=8, update_H=False,
                                                               solver="mu", max_iter=baselines.NMF_UPDATES, tol=0)
        assert error == pytest.approx(((faces_ - codes @ h) ** 2).mean(), rel=1e-4)


def test_the_fits_run_on_all_torch_threads_unless_the_set_is_small(monkeypatch):
    """Both cores for a set the size of ORL's (scikit-learn's fits ran under threadpool_limits(1)); one thread
    for a small one (train.threads_for), and torch's count put back after."""
    torch = pytest.importorskip("torch")
    from facetrend import train

    seen, real, before = [], torch.linalg.eigh, torch.get_num_threads()

    def eigh(*args, **kw):
        seen.append(torch.get_num_threads())
        return real(*args, **kw)

    monkeypatch.setattr(torch.linalg, "eigh", eigh)
    fit_baselines(_faces(), _mask(), 4, 0)  # 32 x 256 x 4: small
    monkeypatch.setattr(train, "SMALL_PRODUCT", 1)
    fit_baselines(_faces(), _mask(), 4, 0)
    assert seen == [1, before] and torch.get_num_threads() == before
