"""What the pages say, computed (issue 16): names from folders, skip reasons without file names, the technical
notes as findings from what was measured, and changes in points."""

from __future__ import annotations

import dataclasses

import numpy as np
from facetrend import analyse, collect
from facetrend.baselines import Baseline
from facetrend.config import ModelSettings
from facetrend.experiments import RunResult


def test_a_folder_name_reads_as_a_name():
    assert collect.person_name("Michael_Caine") == "Michael Caine"
    assert collect.person_name("2025/Michael_Caine") == "Michael Caine"  # the trends page's persons
    assert collect.person_name("s12") == "s12" and collect.person_name("Ann  Lee") == "Ann Lee"
    assert collect.person_name("_") == "_"


def test_people_csv_without_a_name_names_the_person_from_the_folder(tmp_path):
    from facetrend import config

    from .conftest import write_report

    folder = write_report(tmp_path / "content", "r", "")
    (folder / "people.csv").write_text("person,name,university\nMichael_Caine,,Oxford\nAnn_Lee,Ann L.,\n",
                                       encoding="utf-8")
    people = collect.read_people(config.load_report(folder, config.SiteSettings()))
    assert people["Michael_Caine"]["name"] == "Michael Caine" and people["Ann_Lee"]["name"] == "Ann L."


def test_skip_reasons_are_counted_without_naming_any_file():
    counts = analyse.skip_counts(["duplicate of s1/Jane_Doe.jpg", "duplicate of s2/x.jpg", "no face found",
                                  "could not be read (cannot identify image file 'Jane_Doe.png')",
                                  "near-duplicate of s3/Bob.jpg"])
    assert counts[0] == {"reason": "duplicate of another photo", "count": 2}
    assert {c["reason"] for c in counts} == {"duplicate of another photo", "no face found", "could not be read",
                                             "near-duplicate of another photo"}
    assert "Jane" not in repr(counts) and "Bob" not in repr(counts)


def test_points_in_words():
    assert analyse.points_text(0.01) == "up 1 point" and analyse.points_text(-0.12) == "down 12 points"
    assert analyse.points_text(0.001).startswith("no change")


def _pca(error: float) -> Baseline:
    return Baseline("PCA", np.zeros((1, 4), np.float32), 1, error, error, "")


def test_findings_say_whether_the_test_loss_was_still_falling():
    falling = analyse.findings([0.3, 0.2], [0.30, 0.25, 0.20], 0.20, [], [])
    assert falling[0].startswith("The test loss was still falling at epoch 3, the last")
    rose = analyse.findings([0.3, 0.2], [0.30, 0.20, 0.25], 0.25, [], [])
    assert "lowest at epoch 2 of 3 and rose" in rose[0]
    flat = analyse.findings([0.3, 0.2], [0.30, 0.20, 0.20], 0.20, [], [])
    assert "levelled off" in flat[0]
    untested = analyse.findings([0.3, 0.2], [], None, [], [])
    assert "training loss (no faces were held out) was still falling" in untested[0]


def test_findings_say_when_pca_rebuilds_held_out_faces_better_and_what_that_means():
    better = analyse.findings([0.2], [0.2], 0.02, [_pca(0.01)], [])
    assert any("PCA" in f and "better than the autoencoder (error 50% lower)" in f and "adds nothing" in f
               for f in better)
    worse = analyse.findings([0.2], [0.2], 0.02, [_pca(0.04)], [])
    assert any(f.startswith("The autoencoder rebuilt the held-out faces better than PCA") for f in worse)


def _run(label: str, settings: ModelSettings, final: float, face_like: int = 3) -> RunResult:
    return RunResult(label, settings, [final], [final], final, settings.hidden[0], face_like, 1, 0.1, 0.0, True,
                     np.zeros((0, 4)))


def test_the_sweep_verdicts_are_one_line_findings():
    base = ModelSettings(hidden=[400], activation="relu", dropout=0.2, noise=0.0)
    runs = [_run("report model", base, 0.030),
            _run("sigmoid", dataclasses.replace(base, activation="sigmoid"), 0.060),
            _run("100 units", dataclasses.replace(base, hidden=[100]), 0.040),
            _run("1000 units", dataclasses.replace(base, hidden=[1000]), 0.031),
            _run("no dropout", dataclasses.replace(base, dropout=0.0), 0.0315),
            _run("masking noise 0.2", dataclasses.replace(base, noise=0.2), 0.045, face_like=0)]
    said = analyse.sweep_findings(runs)
    assert said[0] == "About 400 units worked best (of 100, 400, 1000 tried, by test loss)."
    assert "ReLU beat sigmoid (test loss 50% lower)." in said
    assert "Dropout helped a little (test loss 5% lower with it)." in said
    assert "Masking noise (denoising) clearly hurt (test loss 33% lower without it); it left no unit " \
           "interpretable." in said
    assert analyse.sweep_findings(runs[:1]) == []
