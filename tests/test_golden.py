"""Golden output, in Pelican's manner: build the repository's own content/ (the demo report, the 100 LFW faces
scikit-image ships) in smoke mode into a temp folder and compare it with tests/golden/: the demo's report.json
(floats within a tolerance, since torch's CPU results can differ across CPUs in the last digits; everything else
exactly) and the sorted list of every file in the site.

When a change to the output is intended, regenerate the expected files with ONE command and commit them:

    make golden        # = .venv/bin/python -m pytest tests/test_golden.py --regen-golden
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from facetrend.build import BuildOptions, build

from .conftest import REPO

GOLDEN = Path(__file__).parent / "golden"
REPORT, FILES = GOLDEN / "demo-report.json", GOLDEN / "site-files.txt"
REL, ABS = 1e-3, 1e-5  # float tolerance
SHOWN = 20  # differences printed at most


@pytest.fixture(scope="module")
def demo_site(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("golden")
    build(BuildOptions(content=REPO / "content", out=root / "site", cache=root / "cache", smoke=True))
    return root / "site"


def differences(expected, actual, where: str = "") -> list[str]:
    """Where two JSON values differ, as readable lines: floats within REL/ABS, everything else exactly."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = [f"{where}/{k}: only in {'expected' if k in expected else 'actual'}"
               for k in sorted(set(expected) ^ set(actual))]
        return out + [d for k in sorted(set(expected) & set(actual)) for d in differences(expected[k], actual[k],
                                                                                            f"{where}/{k}")]
    if isinstance(expected, list) and isinstance(actual, list):
        out = [] if len(expected) == len(actual) else [f"{where or '/'}: {len(expected)} items expected, {len(actual)}"]
        return out + [d for i, (e, a) in enumerate(zip(expected, actual, strict=False))
                      for d in differences(e, a, f"{where}[{i}]")]
    if isinstance(expected, float) or isinstance(actual, float):
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (expected, actual))
        if numbers and math.isclose(expected, actual, rel_tol=REL, abs_tol=ABS):
            return []
    elif expected == actual and type(expected) is type(actual):
        return []
    return [f"{where or '/'}: expected {expected!r:.80}, got {actual!r:.80}"]


def site_files(site: Path) -> list[str]:
    return sorted(p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file())


def test_the_demo_build_matches_the_golden_output(demo_site: Path, request):
    """Fails when the demo's report.json or the site's list of files drifts from tests/golden/; prints the first
    differences. Regenerate with `make golden` when the change is intended."""
    report = json.loads((demo_site / "demo" / "report.json").read_text(encoding="utf-8"))
    files = site_files(demo_site)
    if request.config.getoption("--regen-golden"):
        GOLDEN.mkdir(exist_ok=True)
        REPORT.write_text(json.dumps(report, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
        FILES.write_text("\n".join(files) + "\n", encoding="utf-8")
        pytest.skip(f"regenerated {REPORT.name} and {FILES.name}: review `git diff tests/golden` and commit")
    assert REPORT.exists() and FILES.exists(), "no golden output: run `make golden` and commit tests/golden/"
    expected_files = FILES.read_text(encoding="utf-8").splitlines()
    gone, new = sorted(set(expected_files) - set(files)), sorted(set(files) - set(expected_files))
    assert not gone and not new, f"site files drifted (`make golden` if intended): missing {gone[:SHOWN]}, " \
                                 f"new {new[:SHOWN]}"
    drift = differences(json.loads(REPORT.read_text(encoding="utf-8")), report)
    assert not drift, f"{len(drift)} differences in demo/report.json (`make golden` if intended):\n" + \
                      "\n".join(drift[:SHOWN])


def test_the_comparison_sees_drift_and_forgives_last_digits():
    assert differences({"a": [1.0, "x"]}, {"a": [1.0 + 1e-9, "x"]}) == []
    assert differences({"a": [1.0, "x"]}, {"a": [1.1, "y"], "b": 1}) == [
        "/b: only in actual", "/a[0]: expected 1.0, got 1.1", "/a[1]: expected 'x', got 'y'"]
    assert differences([1, 2], [1]) == ["/: 2 items expected, 1"]
    assert differences({"n": 3}, {"n": "3"}) == ["/n: expected 3, got '3'"]
