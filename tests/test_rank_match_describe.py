import numpy as np
from facetrend import describe, match, rank
from facetrend.config import FaceSettings
from facetrend.faces import Faces
from facetrend.pixels import equalise

from .conftest import noise_images


def _smooth(n: int, size: int) -> np.ndarray:
    y, x = np.mgrid[:size, :size] / size
    return np.stack([np.sin((k + 1) * x * 3) + np.cos((k + 2) * y * 2) for k in range(n)]).reshape(n, -1)


def test_face_score_separates_static_from_structure():
    static = np.random.default_rng(0).normal(size=(50, 32 * 32))
    assert rank.face_scores(static, 32).max() < 0.15
    assert rank.face_scores(_smooth(5, 32), 32).min() > 0.9
    half = 0.5 * static[:5] / static[:5].std() + _smooth(5, 32) / _smooth(5, 32).std()
    assert 0.5 < rank.face_scores(half, 32).mean() < 0.95


def test_selectivity_is_roc_auc():
    faces = np.array([[3.0, 1.0], [4.0, 1.0], [5.0, 1.0]])
    nonfaces = np.array([[0.0, 1.0], [1.0, 1.0]])
    assert rank.selectivity(faces, nonfaces).tolist() == [1.0, 0.5]


def test_average_ranks_equal_scipy_rankdata_bit_for_bit():
    """rank.average_ranks replaces scipy.stats.rankdata (its import was half a second of a cold build): ties,
    zeros (ReLU activations), one row, NaN columns and float32 input give exactly scipy's float64 ranks."""
    from scipy.stats import rankdata

    rng = np.random.default_rng(0)
    cases = [np.array([[3.0, 1.0], [4.0, 1.0], [5.0, 1.0], [3.0, 1.0]]), np.zeros((1, 3)), np.zeros((0, 2))]
    for trial in range(60):
        n, m = int(rng.integers(1, 40)), int(rng.integers(1, 6))
        values = rng.integers(0, 4, (n, m)) if trial % 3 == 0 else np.maximum(rng.normal(size=(n, m)), 0)
        values = values.astype(np.float32 if trial % 2 else np.float64)
        if trial % 5 == 0:
            values[int(rng.integers(0, n)), 0] = np.nan
        cases.append(values)
    for values in cases:
        ours, theirs = rank.average_ranks(values), rankdata(values, axis=0)
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
        assert np.array_equal(ours, theirs, equal_nan=True), values


def test_selectivity_needs_no_scipy_stats():
    import subprocess
    import sys

    code = ("import sys, numpy as np; from facetrend import rank; "
            "rank.selectivity(np.ones((3, 2)), np.zeros((2, 2))); print('scipy.stats' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_featured_units_show_a_distinct_look_many_people_share():
    weights = np.concatenate([np.random.default_rng(0).normal(size=(3, 256)), _smooth(3, 16)])
    pixels = np.full((12, 16, 16), 120, np.uint8) + noise_images(12, 16) // 16
    pixels[0:3, 8:] -= 80  # three people with dark lower halves
    pixels[6:9, :, :8] += 80  # one person three times, brighter on the left
    persons = ["a", "b", "c", "d", "e", "f", "g", "g", "g", "h", "i", "j"]
    groups = [[9, 10, 11], [3, 4, 5], [0, 9, 3], [0, 1, 2], [6, 7, 8], []]  # unit 5 is silent
    acts = np.random.default_rng(1).normal(size=(12, 6))
    signals = rank.Signals(pixels, persons, groups, acts, acts[:4])
    r = rank.rank_units(weights, 16, signals, featured=3)
    assert r.featured[:2] == [3, 4]  # structured units first: the shared look before one person's
    assert abs(r.diversity[3] - 1) < 1e-9 and abs(r.diversity[4] - 1 / 3) < 1e-9
    assert r.distinctiveness[3] > 1 and r.trend_score[3] > r.trend_score[4]
    assert 5 not in r.featured and len(r.featured) == 3  # a silent unit is never featured, however smooth
    assert sorted(r.rank.tolist()) == list(range(1, 7)) and r.rank[3] == 1
    assert rank.rank_units(weights, 16, signals, featured=1, pinned=[0]).featured == [3, 0]


def test_nonface_patches_are_made_like_the_crops():
    plain = rank.nonface_patches(FaceSettings(size=20, equalize="none"))
    assert plain.shape == (100, 20, 20)
    equalised = rank.nonface_patches(FaceSettings(size=20))  # histogram equalisation, as the crops by default
    assert all(np.array_equal(e, equalise(p, FaceSettings(size=20))) for e, p in zip(equalised, plain, strict=True))
    assert not np.array_equal(plain, equalised)


def test_an_untrained_layer_is_no_better_than_chance_on_average(att_faces):
    """Static units: each random projection favours faces or non-faces by chance; on average, neither.
    (Measured on ORL: trained units are no more face-selective than untrained ones, median AUC 0.48 against 0.50:
    a model trained only on faces learns how faces differ from each other, not from non-faces.)"""
    import cv2
    from facetrend import train
    from facetrend.config import ModelSettings

    settings = FaceSettings(size=24)
    photos = sorted(att_faces.glob("*/*.pgm"))[::4]
    crops = np.stack([equalise(cv2.resize(cv2.imread(str(p), 0)[10:102], (24, 24), interpolation=cv2.INTER_AREA),
                               settings) for p in photos])
    model = train._new_model(24 * 24, ModelSettings(hidden=[300]))
    sel = rank.selectivity(train.first_layer(model, crops), train.first_layer(model, rank.nonface_patches(settings)))
    assert abs(sel.mean() - 0.5) < 0.05


def _faces(n: int, persons: list) -> Faces:
    return Faces([f"f{i}" for i in range(n)], ["x"] * n, persons, noise_images(n, 8), [False] * n, n, [], False)


def test_matches_are_best_first_and_prevalence_follows_the_half_range_rule():
    acts = np.array([[0.0, 5.0], [10.0, 5.0], [6.0, 5.0], [4.0, 5.0]])
    m = match.match_units(acts, _faces(4, ["a", "a", "b", None]), top=3)
    assert m.best[0] == [1, 2, 3] and m.best[1] == []  # a unit silent on every face matches nobody
    assert m.photos.tolist() == [2, 0]  # 10 and 6 reach half of the range 0..10; a flat unit: nobody
    assert m.prevalence.tolist() == [0.5, 0.0]
    assert m.people.tolist() == [2, 0]


def test_an_author_caption_keeps_its_words_and_the_measured_effects():
    rng = np.random.default_rng(1)
    pixels = rng.integers(100, 160, (40, 32, 32)).astype(np.uint8)
    pixels[:10, 22:, :9] = 20  # long dark hair at the lower left and right
    pixels[:10, 22:, 23:] = 20
    captions = describe.describe(pixels, [list(range(10)), []], top=10, authored={0: "long hair", 1: "silent"})
    assert captions[0].text == "long hair" and not captions[0].generated
    assert captions[0].effects["lower left"] < -1 and captions[0].effects["lower sides"] < -1
    assert captions[1].effects == {}  # a silent unit has no matches to measure


