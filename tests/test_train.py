import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from facetrend import train
from facetrend.collect import Skipped
from facetrend.config import FaceSettings, ModelSettings
from facetrend.faces import Faces

from .conftest import noise_images

SETTINGS = ModelSettings(hidden=[10], epochs=4, batch_size=8)


def _faces(n: int = 30, people: int = 6, size: int = 12) -> Faces:
    pixels = noise_images(n, size)
    persons = [f"p{i % people}" for i in range(n)]
    return Faces([f"id{i:03d}" for i in range(n)], [f"{p}/{i}.png" for i, p in enumerate(persons)], persons,
                 pixels, [False] * n, n, [Skipped("x.txt", "not a photo")], False)


def test_split_keeps_each_person_on_one_side():
    persons = [f"p{i % 7}" for i in range(70)]
    mask = train.split_by_person(persons, 0.2, seed=3)
    assert 0.15 <= mask.mean() <= 0.35
    held_out = {p for p, m in zip(persons, mask, strict=True) if m}
    assert held_out and not held_out & {p for p, m in zip(persons, mask, strict=True) if not m}


def test_split_without_people_holds_out_single_faces_and_is_seeded():
    persons = [None] * 50
    a, b = train.split_by_person(persons, 0.2, 1), train.split_by_person(persons, 0.2, 1)
    assert a.sum() == 10 and np.array_equal(a, b)
    assert not train.split_by_person(persons, 0.0, 1).any()
    assert not train.split_by_person(["solo"] * 5, 0.5, 1).any()  # one person: nothing to hold out


def test_training_records_one_loss_per_epoch_and_is_reproducible(tmp_path: Path):
    faces = _faces()
    a = train.train_or_load(faces, SETTINGS, tmp_path / "a")
    b = train.train_or_load(faces, SETTINGS, tmp_path / "b")
    assert len(a.train_loss) == len(a.test_loss) == SETTINGS.epochs
    assert not a.cached
    for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert a.train_loss == b.train_loss


def test_loss_falls_on_structured_faces(tmp_path: Path):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (3, 12, 12))
    pixels = np.clip(base[rng.integers(0, 3, 60)] + rng.normal(0, 5, (60, 12, 12)), 0, 255).astype(np.uint8)
    faces = Faces([str(i) for i in range(60)], ["x"] * 60, [None] * 60, pixels, [False] * 60, 60, [], False)
    trained = train.train_or_load(faces, ModelSettings(hidden=[8], epochs=40, batch_size=10, dropout=0.0), tmp_path)
    assert trained.test_loss[-1] < 0.5 * trained.test_loss[0]


def test_test_loss_is_measured_without_dropout(tmp_path: Path):
    faces = _faces()
    trained = train.train_or_load(faces, ModelSettings(hidden=[10], epochs=2, dropout=0.9), tmp_path)
    x = torch.from_numpy(faces.pixels.reshape(len(faces.pixels), -1))
    test = x[torch.from_numpy(trained.test_mask)]
    assert trained.test_loss[-1] == train.evaluate(trained.model, test)  # deterministic: eval mode
    assert train.evaluate(trained.model, test) == train.evaluate(trained.model, test)


def test_second_run_loads_the_cache_and_does_not_train(tmp_path: Path, monkeypatch):
    faces = _faces()
    first = train.train_or_load(faces, SETTINGS, tmp_path)

    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(train, "fit", no_training)
    second = train.train_or_load(faces, SETTINGS, tmp_path)
    assert second.cached and second.train_loss == first.train_loss
    assert np.array_equal(second.test_mask, first.test_mask)
    assert np.array_equal(train.unit_weights(second.model), train.unit_weights(first.model))


def test_changed_setting_changed_photo_and_retrain_all_train_again(tmp_path: Path):
    faces = _faces()
    train.train_or_load(faces, SETTINGS, tmp_path)
    assert not train.train_or_load(faces, ModelSettings(hidden=[10], epochs=5, batch_size=8), tmp_path).cached
    faces.pixels[0, 0, 0] ^= 1
    assert not train.train_or_load(faces, SETTINGS, tmp_path).cached
    assert train.train_or_load(faces, SETTINGS, tmp_path).cached
    assert not train.train_or_load(faces, SETTINGS, tmp_path, retrain=True).cached


def test_corrupt_or_foreign_cache_file_is_logged_and_retrained(tmp_path: Path, caplog):
    faces = _faces()
    train.train_or_load(faces, SETTINGS, tmp_path)
    (checkpoint,) = (tmp_path / "model").glob("*.pt")
    for bad in (b"", checkpoint.read_bytes()[:100], b"PK\x03\x04 not a checkpoint"):
        checkpoint.write_bytes(bad)
        with caplog.at_level(logging.WARNING):
            again = train.train_or_load(faces, SETTINGS, tmp_path)
        assert not again.cached and "unusable" in caplog.text
        caplog.clear()
    torch.save({"format": train.CHECKPOINT_FORMAT, "key": "someone else's"}, checkpoint)
    assert not train.train_or_load(faces, SETTINGS, tmp_path).cached


def test_checkpoint_describes_itself(tmp_path: Path):
    train.train_or_load(_faces(), SETTINGS, tmp_path)
    (checkpoint,) = (tmp_path / "model").glob("*.pt")
    data = torch.load(checkpoint, weights_only=True)
    assert data["settings"]["hidden"] == [10] and data["versions"]["torch"] == str(torch.__version__)
    assert len(data["key"]) == 64 and "state_dict" in data and len(data["train_loss"]) == 4


def test_deeper_model_and_sigmoid_and_noise_train(tmp_path: Path):
    s = ModelSettings(hidden=[10, 4], activation="sigmoid", noise=0.3, epochs=2, batch_size=8)
    trained = train.train_or_load(_faces(), s, tmp_path)
    assert train.unit_weights(trained.model).shape == (10, 144)
    assert train.first_layer(trained.model, _faces().pixels).shape == (30, 10)


def test_units_stay_alive_on_real_faces(tmp_path: Path, att_faces: Path):
    """Regression: uncentred, Adam's first steps killed all but one of 400 ReLU units on ORL faces."""
    from facetrend import collect, faces

    found = faces.find_faces(collect._folder(att_faces), FaceSettings(equalize="none"), tmp_path / "cache", "x")
    subset = Faces(found.ids[:120], found.photos[:120], found.persons[:120], found.pixels[:120],
                   found.detected[:120], 120, [], False)
    trained = train.train_or_load(subset, ModelSettings(hidden=[100], epochs=6), tmp_path)
    alive = train.first_layer(trained.model, subset.pixels).std(axis=0) > 0
    assert alive.mean() > 0.9
    assert trained.test_loss[-1] < 0.03
    off = train.train_or_load(subset, ModelSettings(hidden=[100], epochs=6, center=False), tmp_path)
    assert off.test_loss[-1] > trained.test_loss[-1]


def _reference_fit(pixels: np.ndarray, test_mask: np.ndarray, s: ModelSettings):
    """The straightforward loop: float data in memory, unfused AdamW, one step at a time."""
    from facetrend.model import Autoencoder

    x = torch.from_numpy(pixels.reshape(len(pixels), -1)).float() / 255
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(s.seed)
        model = Autoencoder(x.shape[1], s.hidden, s.activation, s.dropout, s.tied)
        gen = torch.Generator().manual_seed(s.seed)
        train_x, test_x = x[~torch.from_numpy(test_mask)], x[torch.from_numpy(test_mask)]
        model.mean.copy_(train_x.mean(dim=0))
        opt = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay, foreach=False)
        train_loss, test_loss = [], []
        for _ in range(s.epochs):
            model.train()
            order, total = torch.randperm(len(train_x), generator=gen), 0.0
            for start in range(0, len(train_x), s.batch_size):
                batch = train_x[order[start:start + s.batch_size]]
                loss = torch.nn.functional.mse_loss(model(batch), batch)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(batch)
            train_loss.append(total / len(train_x))
            model.eval()
            with torch.no_grad():
                test_loss.append(torch.nn.functional.mse_loss(model(test_x), test_x).item())
    return train_loss, test_loss


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_optimised_training_follows_the_reference_loop(activation):
    """Fused AdamW, the tied layer's one autograd node and uint8 batches give the loss curve of the plain loop
    (torch.optim, the model's own forward), within float tolerance."""
    faces = _faces(n=60, people=6, size=16)
    s = ModelSettings(hidden=[24], epochs=8, batch_size=16, dropout=0.3, weight_decay=0.01, activation=activation)
    mask = train.split_by_person(faces.persons, s.test_fraction, s.seed)
    _, train_loss, test_loss = train.fit(torch.from_numpy(faces.pixels.reshape(60, -1)), mask, s, "cpu")
    ref_train, ref_test = _reference_fit(faces.pixels, mask, s)
    np.testing.assert_allclose(train_loss, ref_train, rtol=1e-4)
    np.testing.assert_allclose(test_loss, ref_test, rtol=1e-4)


@pytest.mark.parametrize(("sigmoid", "dropout"), [(False, True), (True, True), (False, False)])
def test_the_tied_layers_gradients_are_the_separate_ops_gradients(sigmoid, dropout):
    """model._TiedLayer's hand-written backward against finite differences (float64), with a gradient arriving
    at the hidden units as well as at the reconstruction (as an L1 penalty on the units sends one)."""
    from facetrend.model import _TiedLayer

    gen = torch.Generator().manual_seed(3)
    x = torch.randn(6, 10, generator=gen, dtype=torch.float64)
    weight, bias, decoder_bias = (torch.randn(*shape, generator=gen, dtype=torch.float64, requires_grad=True)
                                  for shape in ((4, 10), (4,), (10,)))
    keep = (torch.rand(6, 4, generator=gen, dtype=torch.float64) >= 0.3).double() / 0.7 if dropout else None

    def both(w, b, c):
        hidden, out = _TiedLayer.apply(x, w, b, c, keep, sigmoid)
        return hidden.abs().sum(), out

    assert torch.autograd.gradcheck(both, (weight, bias, decoder_bias))


def test_tied_weights_share_the_encoder_matrix(tmp_path: Path):
    trained = train.train_or_load(_faces(), ModelSettings(hidden=[10], epochs=2, tied=True), tmp_path)
    names = [n for n, _ in trained.model.named_parameters()]
    assert not any(n.startswith("decoder.") for n in names) and len(trained.test_loss) == 2
    again = train.train_or_load(_faces(), ModelSettings(hidden=[10], epochs=2, tied=True), tmp_path)
    assert again.cached and np.array_equal(train.unit_weights(again.model), train.unit_weights(trained.model))


def test_sparsity_makes_fewer_units_fire(tmp_path: Path):
    faces = _faces(n=60, size=12)
    dense = train.train_or_load(faces, ModelSettings(hidden=[20], epochs=20, batch_size=10), tmp_path)
    sparse = train.train_or_load(faces, ModelSettings(hidden=[20], epochs=20, batch_size=10, sparsity=1.0), tmp_path)
    active = [(train.first_layer(t.model, faces.pixels) > 1e-6).mean() for t in (dense, sparse)]
    assert active[1] < active[0]


def test_early_stopping_keeps_the_best_epoch(tmp_path: Path):
    faces = _faces(n=60, size=12)  # noise: the test loss soon stops improving
    s = ModelSettings(hidden=[40], epochs=200, batch_size=10, dropout=0.0, lr=0.01, early_stopping=3)
    trained = train.train_or_load(faces, s, tmp_path)
    assert len(trained.test_loss) < 200
    best = min(trained.test_loss)
    assert trained.test_loss.index(best) == len(trained.test_loss) - 4  # stopped 3 epochs after the best
    x = torch.from_numpy(faces.pixels.reshape(60, -1))[torch.from_numpy(trained.test_mask)]
    assert abs(train.evaluate(trained.model, x) - best) < 1e-9  # and kept the best weights


def test_masking_noise_does_not_wreck_the_clean_test_loss(att_faces: Path):
    """Regression: masked pixels were set to 0 before centring, i.e. to minus the mean face, so a
    denoising model met clean faces as strangers (ORL at 64x64: test loss 0.77 against 0.013 without
    noise; at 24x24 with 100 units, 0.0205 against 0.0140)."""
    import cv2

    paths = sorted(att_faces.glob("*/*.pgm"))[:200]
    pixels = np.stack([cv2.resize(cv2.imread(str(p), 0), (24, 24), interpolation=cv2.INTER_AREA) for p in paths])
    x = torch.from_numpy(pixels.reshape(len(pixels), -1))
    mask = train.split_by_person([p.parent.name for p in paths], 0.2, 0)
    loss = {noise: train.fit(x, mask, ModelSettings(hidden=[100], epochs=15, noise=noise), "cpu")[2][-1]
            for noise in (0.0, 0.2)}
    assert loss[0.2] < 1.2 * loss[0.0]


def test_the_fused_step_is_torch_optims_fused_adamw_bit_for_bit():
    """train.FusedAdamW calls the kernel torch.optim.AdamW(fused=True) calls, with the same state."""
    from facetrend.model import Autoencoder

    def run(make) -> list[torch.Tensor]:
        torch.manual_seed(0)
        model = Autoencoder(64, [16], "relu", 0.0, False)
        opt = make(model)
        x = torch.rand(32, 64, generator=torch.Generator().manual_seed(1))
        for _ in range(5):
            loss = torch.nn.functional.mse_loss(model(x), x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return [p.detach().clone() for p in model.parameters()]

    ours = run(lambda m: train.FusedAdamW(m.parameters(), lr=0.01, weight_decay=0.3))
    theirs = run(lambda m: torch.optim.AdamW(m.parameters(), lr=0.01, weight_decay=0.3, fused=True))
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))


def test_training_in_a_fresh_process_does_not_import_torch_dynamo():
    """torch.optim imports torch._dynamo on first use: about a second of every cold build."""
    import subprocess
    import sys

    code = ("import sys, numpy as np, torch\nfrom facetrend import train\nfrom facetrend.config import ModelSettings\n"
            "x = torch.randint(0, 256, (20, 16), dtype=torch.uint8)\n"
            "train.fit(x, np.arange(20) >= 16, ModelSettings(hidden=[4], epochs=2, batch_size=4), 'cpu')\n"
            "print('torch._dynamo' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip().splitlines()[-1] == "False", done.stderr[-2000:]
