"""Hostile input: the build finishes, lists every file it skipped with a reason, follows no link out
of the content folder, and keeps its memory bounded."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO, write_report
from .hostile.corpus import build_corpus

TINY_MODEL = "faces:\n  size: 16\n  crops: yes\nmodel:\n  hidden: [8]\n  epochs: 1\n  batch_size: 256\nfeatured: 2\n"


@pytest.fixture(scope="module")
def hostile_build(tmp_path_factory, att_faces: Path):
    root = tmp_path_factory.mktemp("hostile")
    content = root / "content"
    folder = write_report(content, "wild", "title: Wild\n" + TINY_MODEL)
    good = sorted((att_faces / "s1").glob("*.pgm"))[:3]
    expect = build_corpus(folder / "photos", root / "outside", good, att_faces / "s2" / "1.pgm")
    code = ("import json, resource, sys; from facetrend.cli import main; rc = main(sys.argv[1:]); "
            "print(json.dumps({'rc': rc, 'rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))")
    result = subprocess.run([sys.executable, "-c", code, "-q", "build", "--content", str(content),
                             "--out", str(root / "site"), "--cache", str(root / "cache")],
                            capture_output=True, text=True, timeout=900, cwd=REPO)
    return root, expect, result


def test_the_build_finishes_and_lists_every_skipped_file_with_a_reason(hostile_build):
    root, expect, result = hostile_build
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["rc"] == 0
    doc = json.loads((root / "site" / "wild" / "report.json").read_text(encoding="utf-8"))
    reasons = {s["path"]: s["reason"] for s in doc["photos"]["skipped"]}
    for path, why in expect.items():
        assert why in reasons.get(path, ""), f"{path}: {reasons.get(path)}"
    assert doc["photos"]["faces"] >= 3 + 1 + 10_000  # the good photos, the buried one, the crowd
    assert any(p.endswith("buried.pgm") for p in (f["photo"] for f in doc["faces"]))


def test_no_link_out_of_the_content_folder_is_followed(hostile_build):
    root, _, _ = hostile_build
    doc = json.loads((root / "site" / "wild" / "report.json").read_text(encoding="utf-8"))
    assert not any("secret" in f["photo"] or "link-to" in f["photo"] for f in doc["faces"])


def test_undecodable_and_multiline_names_are_shown_safely(hostile_build):
    root, _, _ = hostile_build
    doc = json.loads((root / "site" / "wild" / "report.json").read_text(encoding="utf-8"))
    odd = [f["photo"] for f in doc["faces"] if "bad" in f["photo"]]
    assert odd == ["mixed/bad\ufffdname\ufffdline.png"]


def test_memory_stays_bounded(hostile_build):
    _, _, result = hostile_build
    assert json.loads(result.stdout.strip().splitlines()[-1])["rss_mb"] < 1500
