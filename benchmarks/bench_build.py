"""Time `build()` cold (empty cache) and warm (same cache) on the demo and on the 390 ORL faces.

Run by hand from the repository root:

    python benchmarks/bench_build.py [--repeat N] [--quick]

Prints one JSON object on stdout; progress goes to stderr. Nothing in the repository is written:
content, output and cache folders live in a temporary directory. The ORL photos are read in place
from ../shared/data/att_faces (or the folder named by FACETREND_SHARED_DATA).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

log = logging.getLogger("bench_build")
REPO = Path(__file__).resolve().parents[1]
TARGETS_S = {"orl": {"cold": 20.0, "warm": 3.0}}  # from the issue; the demo has no target
ORL_INDEX = "---\ntitle: ORL faces\nphotos: {photos}\n---\nThe ORL (AT&T) faces, for the benchmark.\n"


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    sys.path.insert(0, str(REPO))  # so `generator` imports even without `pip install -e .`
    repeat = 1 if args.quick else args.repeat
    orl_photos()  # fail before the demo runs if the ORL faces are missing
    result = {"machine": machine_info(), "repeat": repeat, "targets_s": TARGETS_S,
              "demo": bench("demo", _demo_content, repeat),
              "orl": bench("orl", _orl_content, repeat)}
    print(json.dumps(result, indent=1))
    return 0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="cold+warm pairs per build (default: 3)")
    parser.add_argument("--quick", action="store_true", help="one pair per build (same as --repeat 1)")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def machine_info() -> dict:
    import torch

    return {"platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(), "cpu_model": _cpu_model(), "date": datetime.now().isoformat(),
            "git": _git_version(), "load_avg_1m": _load_avg()}


def _cpu_model() -> str | None:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return None
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), None)


def _git_version() -> str | None:
    """The commit measured; `-dirty` when the working tree had uncommitted changes."""
    try:
        done = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True, text=True)
    except OSError:
        return None
    return done.stdout.strip() or None


def _load_avg() -> float | None:
    """Load at the start: another busy process on the machine slows every figure."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def orl_photos() -> Path:
    """The att_faces folder: in FACETREND_SHARED_DATA (or that folder itself), else ../shared/data/att_faces."""
    shared = os.environ.get("FACETREND_SHARED_DATA")
    data = Path(shared) if shared else REPO.parent / "shared" / "data"
    photos = data if data.name == "att_faces" else data / "att_faces"
    if not photos.is_dir():
        raise SystemExit(f"error: no ORL faces at {photos}; set FACETREND_SHARED_DATA to the folder holding att_faces")
    return photos.resolve()


def _demo_content(content: Path) -> None:
    content.mkdir(parents=True)
    shutil.copy2(REPO / "content" / "site.toml", content / "site.toml")
    shutil.copytree(REPO / "content" / "demo", content / "demo")


def _orl_content(content: Path) -> None:
    (content / "orl").mkdir(parents=True)
    shutil.copy2(REPO / "content" / "site.toml", content / "site.toml")
    (content / "orl" / "index.md").write_text(ORL_INDEX.format(photos=orl_photos()), encoding="utf-8")


def bench(slug: str, make_content, repeat: int) -> dict:
    """`repeat` cold+warm pairs, each in a fresh temporary folder: a summary per kind of build."""
    return bench_with_runs(slug, make_content, repeat)[0]


def bench_with_runs(slug: str, make_content, repeat: int) -> tuple[dict, list[dict]]:
    """As `bench`, plus every run: {"cold": (seconds, record), "warm": (seconds, record)} (benchmarks/bench.py)."""
    runs = [_cold_then_warm(slug, make_content, i + 1, repeat) for i in range(repeat)]
    return summarise(slug, runs), runs


def summarise(slug: str, runs: list[dict]) -> dict:
    """The summary `bench` prints for one build, from its cold+warm runs."""
    repeat = len(runs)
    median_run = sorted(runs, key=lambda r: r["cold"][0])[(repeat - 1) // 2]
    out = {kind: _summary(slug, kind, runs, median_run) for kind in ("cold", "warm")}
    warm = [r["warm"][1] for r in runs]
    # an incremental build skips a report whose inputs did not change: it records no stages at all
    out["warm"]["skipped_every_run"] = all(w.get("skipped", False) for w in warm)
    out["warm"]["model_cached_every_run"] = all(w.get("skipped") or w["cached"].get("model") is True for w in warm)
    return out


def _summary(slug: str, kind: str, runs: list[dict], median_run: dict) -> dict:
    """Median, minimum and samples in seconds, the target, and the stage timings of the median cold run's pair."""
    samples = [r[kind][0] for r in runs]
    summary = {"median_s": round(statistics.median(samples), 3), "min_s": min(samples), "samples_s": samples}
    target = TARGETS_S.get(slug, {}).get(kind)
    if target is not None:
        summary.update(target_s=target, meets_target=summary["median_s"] < target)
    record = median_run[kind][1]
    return summary | {"timings_s": record["timings"], "cached": record["cached"]}


def _cold_then_warm(slug: str, make_content, run: int, repeat: int) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"bench-{slug}-") as tmp:
        root = Path(tmp)
        make_content(root / "content")
        cold = _timed_build(root)
        warm = _timed_build(root)
    log.info("%s run %d/%d: cold %.2f s, warm %.2f s", slug, run, repeat, cold[0], warm[0])
    return {"cold": cold, "warm": warm}


def _timed_build(root: Path) -> tuple[float, dict]:
    """One build of the single report in root/content; seconds and its last-build.json record."""
    from facetrend.build import BuildOptions, build

    options = BuildOptions(content=root / "content", out=root / "site", cache=root / "cache")
    start = time.perf_counter()
    result = build(options)
    seconds = round(time.perf_counter() - start, 3)
    return seconds, only_record(result.record)


def only_record(last_build: dict) -> dict:
    """The one report's entry of last-build.json; when the build skipped it (nothing changed), a marker saying so."""
    records = list(last_build["reports"].values())
    if not records:
        return {"timings": {}, "cached": {}, "skipped": True}
    (record,) = records
    return record


if __name__ == "__main__":
    sys.exit(main())
