"""The ranking signals beyond structure: moved from the start, agreement, selectivity against the
photos' own backgrounds, and what deeper units look for."""

import json
from pathlib import Path

import cv2
import numpy as np
import torch
from facetrend import rank, train
from facetrend.build import BuildOptions, build
from facetrend.config import FaceSettings, ModelSettings
from facetrend.detect import Face
from facetrend.pixels import background_patch

from .conftest import SMALL_MODEL, copy_people, write_report


def test_a_unit_training_never_touched_has_moved_nowhere():
    s = ModelSettings(hidden=[8], epochs=1)
    start = train.initial_weights(64, s)
    trained = start.copy()
    trained[0] += start[0]  # this unit doubled: it moved its own length
    assert np.allclose(rank.moved(trained, start), [1.0] + [0.0] * 7)


def test_the_random_start_is_rebuilt_exactly_from_the_seed():
    s = ModelSettings(hidden=[8], epochs=1, dropout=0.0, test_fraction=0.0)
    x = torch.randint(0, 256, (20, 64), dtype=torch.uint8)
    zero_lr = ModelSettings(hidden=[8], epochs=1, lr=0.0, dropout=0.0, test_fraction=0.0)
    model, _, _ = train.fit(x, np.zeros(20, bool), zero_lr, "cpu")
    assert np.array_equal(train.unit_weights(model), train.initial_weights(64, s))


def test_agreement_is_high_when_the_weights_look_like_what_sets_the_matches_apart():
    rng = np.random.default_rng(0)
    pixels = rng.integers(100, 140, (40, 8, 8)).astype(np.uint8)
    pixels[:10, 4:, :] -= 60  # ten faces darker below
    pattern = np.zeros((8, 8))
    pattern[4:, :] = -1
    weights = np.stack([pattern.ravel(), rng.normal(size=64)])
    a = rank.agreement(weights, rank.group_offsets(pixels, [list(range(10)), list(range(10))]))
    assert a[0] > 0.9 and abs(a[1]) < 0.4
    assert rank.agreement(weights, rank.group_offsets(pixels, [[], []])).tolist() == [0.0, 0.0]


def test_background_patch_avoids_every_face_and_is_the_same_each_time():
    image = np.tile(np.arange(200, dtype=np.uint8), (100, 1))
    faces = [Face((10, 10, 40, 40), None), Face((120, 40, 30, 30), None)]
    patch = background_patch(image, faces, 0.0, 16)
    assert patch.shape == (16, 16)
    assert np.array_equal(patch, background_patch(image, faces, 0.0, 16))
    assert background_patch(image, [Face((0, 0, 100, 100), None)], 0.0, 16) is not None  # room to the right
    assert background_patch(image[:, :100], [Face((0, 0, 100, 100), None)], 0.0, 16) is None  # no room


def test_selectivity_uses_the_photos_own_backgrounds_when_there_are_enough():
    some = np.zeros((rank.MIN_BACKGROUNDS, 8, 8), np.uint8)
    assert rank.nonfaces(some, FaceSettings(size=8))[1] == rank.BACKGROUNDS
    few, source = rank.nonfaces(some[:3], FaceSettings(size=8))
    assert source == rank.LFW_NONFACES and len(few) == 100


def test_first_layer_preferred_inputs_are_the_weight_images():
    x = torch.randint(0, 256, (30, 64), dtype=torch.uint8)
    model, _, _ = train.fit(x, np.zeros(30, bool), ModelSettings(hidden=[6, 3], epochs=2, test_fraction=0.0), "cpu")
    radius = train.face_radius(model, x.numpy().reshape(30, 8, 8))
    first = train.preferred_inputs(model, 1, radius)
    w = train.unit_weights(model)
    assert np.allclose(np.linalg.norm(first, axis=1), radius, rtol=1e-4)
    assert min(np.corrcoef(a, b)[0, 1] for a, b in zip(first, w, strict=True)) > 0.999
    deeper = train.preferred_inputs(model, 2, radius)
    assert deeper.shape == (3, 64)
    with torch.no_grad():  # each drives its own unit harder than a random input of the same length does
        rand = torch.from_numpy(np.random.default_rng(0).normal(size=(3, 64)).astype(np.float32))
        rand = rand * radius / rand.norm(dim=1, keepdim=True)
        drive = lambda v: model.encoder[1](model.encode(v + model.mean, depth=1)).diagonal()  # noqa: E731
        assert (drive(torch.from_numpy(deeper)) >= drive(rand)).all()


def test_a_two_layer_report_shows_its_second_layer(tmp_path: Path, att_faces: Path):
    content = tmp_path / "content"
    front = "title: Deep\nfeatured: 2\n" + SMALL_MODEL.replace("hidden: [12]", "hidden: [12, 5]")
    copy_people(att_faces, write_report(content, "deep", front) / "photos", people=4, per_person=5)
    build(BuildOptions(content=content, out=tmp_path / "site", cache=tmp_path / "cache"))
    doc = json.loads((tmp_path / "site" / "deep" / "report.json").read_text())
    assert [(d["layer"], d["units"]) for d in doc["deeper_layers"]] == [(2, 5)]
    assert "Hidden layer 2" in (tmp_path / "site" / "deep" / "index.html").read_text()
    picture = cv2.imread(str(tmp_path / "site" / "deep" / "img" / "layer-2.webp"), cv2.IMREAD_GRAYSCALE)
    assert picture is not None and picture.std() > 0
    assert all({"moved", "agreement"} <= set(u) for u in doc["units"])
    assert doc["nonfaces"] == rank.LFW_NONFACES  # whole crops: no backgrounds to take patches from


def test_featured_units_show_different_looks():
    rng = np.random.default_rng(3)
    pixels = (120 + rng.integers(0, 20, (40, 8, 8))).astype(np.uint8)
    pixels[:10, 4:] -= 60  # ten faces darker below
    pixels[20:30, :, :4] += 60  # ten others brighter on the left
    persons = [f"p{i}" for i in range(40)]
    groups = [list(range(10)), list(range(1, 11)), list(range(20, 30)), list(range(30, 40))]
    smooth = rank.group_offsets(pixels, groups)  # each unit looks like what sets its group apart
    signals = rank.Signals(pixels, persons, groups, rng.normal(size=(40, 4)), rng.normal(size=(5, 4)))
    r = rank.rank_units(smooth, 8, signals, featured=2)
    assert sorted(r.featured) == [0, 2]  # unit 1 has unit 0's look; the next distinct look comes instead
    assert rank.rank_units(smooth, 8, signals, featured=4).featured[-1] == 1  # too few looks: filled up


def test_a_small_report_still_ranks_by_trend_score(tmp_path: Path, att_faces: Path):
    """Regression: with 30 faces or fewer every unit's group was every face, so every trend score was 0."""
    content = tmp_path / "content"
    copy_people(att_faces, write_report(content, "tiny", "featured: 2\n" + SMALL_MODEL) / "photos", people=4,
                per_person=5)
    build(BuildOptions(content=content, out=tmp_path / "site", cache=tmp_path / "cache"))
    doc = json.loads((tmp_path / "site" / "tiny" / "report.json").read_text())
    assert rank.group_size(20) == 5
    first = sorted(doc["units"], key=lambda u: u["rank"])[:2]
    assert all(u["trend_score"] > 0 for u in first)
    a, b = (cv2.imread(str(tmp_path / "site" / "tiny" / "units" / f"{u['id']}-mean.png"), 0) for u in first)
    assert not np.array_equal(a, b)  # each composite is its own group's, not the mean of every face


def test_the_kept_epochs_test_loss_is_reported():
    kept = train.Trained(None, [1.0, 0.9, 0.8], [0.5, 0.3, 0.4], np.zeros(3, bool), False, "cpu")
    assert kept.kept_test_loss(early_stopping=1) == 0.3 and kept.kept_test_loss(early_stopping=0) == 0.4


def test_a_one_face_report_says_why_nothing_is_featured(tmp_path: Path, att_faces: Path):
    content = tmp_path / "content"
    copy_people(att_faces, write_report(content, "one", SMALL_MODEL) / "photos", people=1, per_person=1)
    build(BuildOptions(content=content, out=tmp_path / "site", cache=tmp_path / "cache"))
    html = (tmp_path / "site" / "one" / "index.html").read_text()
    assert "Too few faces to tell what they share: 1 face" in html and "featured: 0" not in html
    assert "no faces held out" in html
