import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from facetrend import experiments, train
from facetrend.config import ModelSettings
from facetrend.experiments import Run
from facetrend.faces import Faces
from facetrend.rank import INTERPRETABLE, face_scores, interpretable

SIZE = 16
SMALL = ModelSettings(hidden=[8], epochs=2, batch_size=16)


def _faces(n: int = 60, people: int = 6) -> Faces:
    """Each person a smooth random template; each face its person's template with a little noise."""
    rng = np.random.default_rng(0)
    coarse = rng.normal(128, 50, (people, 4, 4))
    templates = np.kron(coarse, np.ones((SIZE // 4, SIZE // 4)))
    who = np.arange(n) % people
    pixels = np.clip(templates[who] + rng.normal(0, 10, (n, SIZE, SIZE)), 0, 255).astype(np.uint8)
    persons = [f"p{k}" for k in who]
    return Faces([f"id{i:03d}" for i in range(n)], [f"{p}/{i}.png" for i, p in enumerate(persons)], persons,
                 pixels, [False] * n, n, [], False)


def _changed(run: Run, base: ModelSettings) -> set[str]:
    return {f.name for f in dataclasses.fields(base) if getattr(run.settings, f.name) != getattr(base, f.name)}


def test_default_sweep_changes_one_factor_at_a_time_around_the_default_model():
    base = ModelSettings()
    runs = experiments.default_sweep(base)
    assert [(r.label, _changed(r, base)) for r in runs] == [
        ("report model", set()),
        ("sigmoid", {"activation"}),
        ("100 units", {"hidden"}),
        ("1000 units", {"hidden"}),
        ("no dropout", {"dropout"}),
        ("masking noise 0.2", {"noise"}),
    ]
    assert runs[0].settings is base
    assert runs[1].settings.activation == "sigmoid"
    assert runs[2].settings.hidden == [100] and runs[3].settings.hidden == [1000]
    assert runs[4].settings.dropout == 0.0 and runs[5].settings.noise == 0.2


def test_default_sweep_around_another_base_does_not_repeat_it():
    base = ModelSettings(activation="sigmoid", hidden=[100, 20], dropout=0.0, noise=0.3)
    runs = experiments.default_sweep(base)
    labels = [r.label for r in runs]
    assert labels == ["report model", "relu", "400 units", "1000 units", "dropout 0.5", "no masking noise"]
    assert [r.settings for r in runs].count(base) == 1
    assert runs[2].settings.hidden == [400, 20]  # only the first layer varies
    assert all(len(_changed(r, base)) == 1 for r in runs[1:])


def test_overrides_make_labelled_runs_and_reject_unknown_keys():
    base = ModelSettings()
    runs = experiments.sweep_from_overrides(base, [
        {"activation": "sigmoid"}, {"hidden": [1000], "dropout": 0.0}, {"tied": True, "lr": 0.0005},
        {"activation": "sigmoid"},  # a repeat: trained once
        {"dropout": 0.5},  # the report's model again
    ])
    assert [r.label for r in runs] == ["report model", "activation sigmoid", "hidden 1000, dropout 0",
                                       "tied on, lr 0.0005"]
    assert runs[2].settings == dataclasses.replace(base, hidden=[1000], dropout=0.0)


def test_labels_are_unique():
    for base in (ModelSettings(), ModelSettings(activation="sigmoid", hidden=[1000], dropout=0.2, noise=0.2)):
        labels = [r.label for r in experiments.default_sweep(base)]
        assert len(labels) == len(set(labels))
    runs = experiments.sweep_from_overrides(ModelSettings(), [{"noise": 0.2}, {"noise": 0.2, "dropout": 0.0}])
    assert len({r.label for r in runs}) == len(runs) == 3


def test_sweep_results_and_a_second_sweep_trains_nothing(tmp_path: Path, monkeypatch):
    faces = _faces()
    runs = experiments.sweep_from_overrides(SMALL, [{"activation": "sigmoid"}, {"hidden": [12], "noise": 0.2}])
    first = experiments.run_sweep(faces, runs, SIZE, tmp_path)
    assert [r.label for r in first] == [r.label for r in runs]
    assert not any(r.cached for r in first)
    for run, result in zip(runs, first, strict=True):
        assert result.settings == run.settings
        assert len(result.train_loss) == len(result.test_loss) == result.epochs_run == 2
        assert result.final_test == result.test_loss[-1]
        assert result.units == run.settings.hidden[0] and result.seconds >= 0

    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(train, "fit", no_training)
    second = experiments.run_sweep(faces, runs, SIZE, tmp_path)
    assert all(r.cached for r in second)
    for a, b in zip(first, second, strict=True):
        assert (a.train_loss, a.test_loss, a.final_test, a.face_like, a.gflop) == \
               (b.train_loss, b.test_loss, b.final_test, b.face_like, b.gflop)


def test_yield_counts_units_at_or_above_the_threshold(tmp_path: Path):
    faces = _faces()
    [result] = experiments.run_sweep(faces, [Run("x", SMALL)], SIZE, tmp_path)
    weights = train.unit_weights(train.train_or_load(faces, SMALL, tmp_path).model)
    assert result.face_like == int((face_scores(weights, SIZE) >= INTERPRETABLE).sum())
    assert result.face_like_share == result.face_like / 8
    smooth = np.kron(np.random.default_rng(1).normal(size=(3, 4, 4)), np.ones((4, 4))).reshape(3, -1)
    static = np.random.default_rng(2).normal(size=(5, SIZE * SIZE))
    assert interpretable(face_scores(np.concatenate([smooth, static]), SIZE)) == 3


def test_gflop_is_six_times_weights_times_faces_seen(tmp_path: Path):
    faces = _faces()
    [result] = experiments.run_sweep(faces, [Run("x", SMALL)], SIZE, tmp_path)
    n_train = int((~train.split_by_person(faces.persons, SMALL.test_fraction, SMALL.seed)).sum())
    assert result.gflop == pytest.approx(6 * (2 * SIZE * SIZE * 8) * n_train * result.epochs_run / 1e9)
    assert experiments.matrix_weights(100, [10, 3]) == 2 * (100 * 10 + 10 * 3)
    assert experiments.training_gflop(100, [10, 3], 50) == pytest.approx(6 * 2060 * 50 / 1e9)


def test_a_report_with_experiments_publishes_their_page(tmp_path: Path, att_faces: Path):
    from facetrend.build import BuildOptions, build

    from .conftest import SMALL_MODEL, copy_people, write_report

    content = tmp_path / "content"
    front = ("title: Swept\nfeatured: 1\n" + SMALL_MODEL
             + "experiments:\n  enabled: true\n  runs:\n    - {activation: sigmoid}\n    - {hidden: [6], lr: 1e-2}\n")
    copy_people(att_faces, write_report(content, "swept", front) / "photos", people=4, per_person=5)
    options = BuildOptions(content=content, out=tmp_path / "site", cache=tmp_path / "cache")
    build(options)
    site = tmp_path / "site" / "swept"
    doc = json.loads((site / "report.json").read_text())
    assert [r["label"] for r in doc["experiments"]] == ["report model", "activation sigmoid", "hidden 6, lr 0.01"]
    assert doc["experiments"][2]["changes"] == {"hidden": [6], "lr": 0.01}
    assert doc["experiments"][0]["test_loss"] == doc["model"]["test_loss"]  # the report's own model, reused
    html = (site / "experiments.html").read_text()
    assert "activation sigmoid" in html and 'src="img/experiments.png"' in html
    assert 'href="experiments.html"' in (site / "index.html").read_text()
    assert all((site / "img" / f"run-{i}.png").is_file() for i in range(3))
    record = json.loads((tmp_path / "cache" / "last-build.json").read_text())["reports"]["swept"]
    assert "experiment: activation sigmoid" in record["timings"]  # seconds go to the record, not the site


def test_a_bad_experiment_run_names_the_setting(tmp_path: Path):
    from facetrend.cli import main

    from .conftest import write_report

    content = tmp_path / "content"
    write_report(content, "bad", "experiments:\n  enabled: true\n  runs:\n    - {hiden: [10]}\n")
    assert main(["build", "--content", str(content), "--out", str(tmp_path / "site"),
                 "--cache", str(tmp_path / "cache")]) == 2


@pytest.mark.parametrize("key", ["seed", "test_fraction"])
def test_an_experiment_may_not_change_the_held_out_faces(tmp_path: Path, key: str, capsys):
    from facetrend.cli import main

    from .conftest import write_report

    content = tmp_path / "content"
    write_report(content, "bad", f"experiments:\n  enabled: true\n  runs:\n    - {{{key}: 0.1}}\n")
    assert main(["build", "--content", str(content), "--out", str(tmp_path / "site"),
                 "--cache", str(tmp_path / "cache")]) == 2
    assert f"experiments.runs.0.{key}" in capsys.readouterr().err


def _sweep_losses(results: list) -> list:
    return [(r.label, r.train_loss, r.test_loss, r.face_like, r.showcase.tobytes()) for r in results]


def test_runs_train_side_by_side_with_the_numbers_of_one_after_another(tmp_path: Path, monkeypatch):
    """Both cores: the runs not in the cache train in forked workers, one torch thread each, and give exactly
    what training them one after another on one thread gives (so neither the cores nor the load change a page)."""
    import multiprocessing
    import os

    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform: runs train one after another")
    faces = _faces()
    runs = experiments.sweep_from_overrides(SMALL, [{"activation": "sigmoid"}, {"hidden": [12]}, {"dropout": 0.3}])
    monkeypatch.setattr(experiments, "_cores", lambda: 2)  # side by side even on a one-core runner
    pids = tmp_path / "pids"
    pids.mkdir()
    real = experiments._train_one

    def noted(*args):
        (pids / str(os.getpid())).touch()
        return real(*args)

    monkeypatch.setattr(experiments, "_train_one", noted)  # forked workers inherit the patch
    side_by_side = experiments.run_sweep(faces, runs, SIZE, tmp_path / "a")
    workers = {int(p.name) for p in pids.iterdir()}
    assert len(workers) == 2 and os.getpid() not in workers  # the three other runs, on two workers
    assert not any(r.cached for r in side_by_side[1:])
    monkeypatch.setattr(experiments, "PARALLEL", "none")  # one after another, in this process
    in_turn = experiments.run_sweep(faces, runs, SIZE, tmp_path / "b")
    assert _sweep_losses(side_by_side) == _sweep_losses(in_turn)
    again = experiments.run_sweep(faces, runs, SIZE, tmp_path / "a")  # from the cache the workers wrote
    assert all(r.cached for r in again) and _sweep_losses(again) == _sweep_losses(side_by_side)


def test_the_report_model_run_is_the_builds_model_even_when_retraining(tmp_path: Path, monkeypatch):
    """With --retrain the build has just trained the report's model: the sweep takes it, not a second training."""
    faces = _faces()
    main = train.train_or_load(faces, SMALL, tmp_path, retrain=True)
    runs = experiments.sweep_from_overrides(SMALL, [{"activation": "sigmoid"}])
    trained = []
    real = train.train_or_load

    def counted(found, settings, *args, **kw):
        result = real(found, settings, *args, **kw)
        trained.append((settings.activation, result.cached))
        return result

    monkeypatch.setattr(train, "train_or_load", counted)
    monkeypatch.setattr(experiments, "PARALLEL", "none")
    results = experiments.run_sweep(faces, runs, SIZE, tmp_path, retrain=True)
    assert results[0].train_loss == main.train_loss and results[0].cached
    assert trained == [("relu", True), ("sigmoid", False)]


def test_the_longest_runs_go_to_the_workers_first():
    """So two cores finish together: the 1,000-unit run first, ties in the sweep's order."""
    base = ModelSettings()
    runs = [dataclasses.replace(base, hidden=[100]), dataclasses.replace(base, hidden=[1000]),
            dataclasses.replace(base, activation="sigmoid"), dataclasses.replace(base, epochs=60)]
    assert experiments.longest_first(runs) == [1, 3, 2, 0]
