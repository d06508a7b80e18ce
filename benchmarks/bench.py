"""Every figure of issues 6 and 14 in one command: fresh-process builds as ratios, roofline, training, builds,
faces, scale, grid, render, GPU.

Run by hand from the repository root:

    python benchmarks/bench.py [--quick] [--repeat N] [--only SECTION[,SECTION]]

Prints one JSON object on stdout; progress goes to stderr. Every figure is measured in the same run
as its reference (the ideal training time, the reference loop, one process against all cores), as the
median of several runs with every sample kept. Nothing in the repository is written: photos, content,
caches and sites live in temporary folders. The ORL photos are read in place from
../shared/data/att_faces (or FACETREND_SHARED_DATA, as for bench_build.py).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import bench_build

log = logging.getLogger("bench")
REPO = Path(__file__).resolve().parents[1]
SECTIONS = ("fresh", "roofline", "training", "builds", "faces", "scale", "grid", "render", "gpu")
# Issue 14: ratios, each figure against its reference from the same run, so that they hold on any CPU
RATIOS = {"training_to_ideal": 1.5, "orl_process_to_training": 2.0, "scale_process_to_training": 1.3,
          "demo_process_to_training_and_sweep": 2.5, "heavy_stage_cpu_percent": 180.0,
          "no_change_orl_process_s": 0.4, "no_change_scale_process_s": 3.0}
TARGETS = {"training_ratio_to_ideal": 2.0, "orl_cold_s": 8.0, "orl_warm_s": 1.0, "scale_cold_s": 300.0,
           "scale_peak_rss_mb": 2048.0, "grid_s": 1.0, "render_s": 2.0}
BATCH, PIXELS, UNITS = 100, 64 * 64, 400  # the default model's shapes: batch 100, 64x64 crops, 400 units
SCALE_SIZES, QUICK_SCALE_SIZES = (2_000, 5_000, 20_000), (2_000, 5_000)
GPU_SIZES = (20_000, 200_000)
FACE_CROPS, FACE_SCENES, SCENE_SIDE = 600, 400, 250
SEED = 6  # every synthetic data set is seeded
SCALE_INDEX = ("---\ntitle: Scale {n}\nphotos: {photos}\n{faces}---\n"
               "{n} {source}-derived faces, for the scale benchmark.\n")
LFW_CROP, LFW_SHIFTS = 120, ((0, 0), (-4, 3), (3, -4), (4, 4), (-3, -3))  # centre crop of a 250x250 LFW photo


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    # facetrend is imported as installed (`make setup`): its sources are generator/, so the folder alone is not it
    bench_build.orl_photos()  # fail at once if the ORL faces are missing
    result = {"machine": machine(), "quick": args.quick, "repeat": args.repeat, "ratio_targets": RATIOS,
              "targets": TARGETS}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        ctx = Context(args, Path(tmp))
        for name in args.only:
            result[name] = _section(name, ctx)
    print(json.dumps(result, indent=1))
    return 0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="one run per figure (training keeps 3), scale only 2,000 and 5,000 faces")
    parser.add_argument("--repeat", type=int, default=None, help="runs per figure (default 3; 1 with --quick)")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections: " + ", ".join(SECTIONS))
    parser.add_argument("--scale-source", choices=("orl", "lfw"), default="orl",
                        help="scale section's photos: ORL variants (PGM, detected as photos), or crops of the face "
                             "region of ../shared/data/lfw's photos, mirrored and shifted (`crops: yes`)")
    parser.add_argument("--no-edited", action="store_true",
                        help="scale: skip the edited rebuild of the largest set (the cold and no-change builds stay)")
    parser.add_argument("--scale-sizes", default=None,
                        help="comma-separated face counts of the scale section (default 2000,5000,20000)")
    args = parser.parse_args(argv)
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(args.only) - set(SECTIONS))
    if unknown or not args.only:
        parser.error(f"--only: unknown section(s) {', '.join(unknown) or '(none given)'}; "
                     f"choose from {', '.join(SECTIONS)}")
    args.repeat = args.repeat if args.repeat is not None else (1 if args.quick else 3)
    if args.scale_sizes is not None:
        try:
            args.scale_sizes = tuple(sorted({int(v) for v in args.scale_sizes.split(",") if v.strip()}))
        except ValueError:
            parser.error("--scale-sizes: comma-separated whole numbers, e.g. 2000,5000,20000")
        if not args.scale_sizes or min(args.scale_sizes) < 1:
            parser.error("--scale-sizes: at least one size, each at least 1")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def machine() -> dict:
    """bench_build's machine description, its vector units, and what was uncommitted in the measured code."""
    info = bench_build.machine_info() | {"vector_units": _vector_units()}
    done = subprocess.run(["git", "status", "--porcelain", "--", "generator", "templates", "benchmarks"],
                          cwd=REPO, capture_output=True, text=True)
    return info | {"uncommitted": done.stdout.split("\n")[:-1] if done.returncode == 0 else None}


def _vector_units() -> str:
    """AVX-512 or AVX2 (what torch's kernels can use here), from /proc/cpuinfo's flags."""
    try:
        flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), "")
    except OSError:
        return "unknown"
    words = set(flags.split())
    return "AVX-512" if "avx512f" in words else "AVX2" if "avx2" in words else "neither AVX2 nor AVX-512"


def _section(name: str, ctx: Context) -> dict:
    """One section's figures, with how busy the rest of the machine was meanwhile (the main source of noise)."""
    log.info("--- %s", name)
    load, cpu, code = bench_build._load_avg(), _cpu_seconds(), code_hash()
    start = time.perf_counter()
    try:
        out = dict(SECTION_FUNCTIONS[name](ctx))  # a copy: some results are shared between sections
    except Exception as exc:  # noqa: BLE001 - one failing section (a build broken mid-edit) keeps the others
        log.exception("section %s failed", name)
        out = {"error": f"{type(exc).__name__}: {str(exc)[-2000:]}"}
    wall, after = time.perf_counter() - start, _cpu_seconds()
    out |= {"load_avg_1m_at_start": load, "section_s": round(wall, 1), "code_hash_at_start": code,
            "code_changed_during_section": code_hash() != code}
    if cpu and after:
        other = max(0.0, (after[0] - cpu[0]) - (after[1] - cpu[1]))
        out |= {"other_processes_cpu_s": round(other, 1),
                "other_processes_cpu_share": round(other / (wall * (os.cpu_count() or 1)), 3)}
    return out


def code_hash() -> str:
    """A short hash of generator/ and templates/ as they are now: the code measured (others may be editing it)."""
    h = hashlib.sha256()
    for folder in ("generator", "templates"):
        for path in sorted((REPO / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                h.update(path.relative_to(REPO).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:12]


def _cpu_seconds() -> tuple[float, float] | None:
    """(busy CPU seconds of the whole machine, CPU seconds of this process and its waited-for children)."""
    import resource

    try:
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    except (OSError, ValueError):
        return None
    busy = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return busy, sum(u.ru_utime + u.ru_stime for u in usage)


class Context:
    """What several sections share, computed once: the ORL crops, the roofline, the ORL builds."""

    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args, self.tmp = args, tmp
        self.repeat = args.repeat
        self._cache: dict[str, object] = {}

    def once(self, key: str, compute):
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def orl_faces(self):
        return self.once("orl_faces", lambda: _orl_faces(self.tmp / "orl-cache"))

    def roofline(self) -> dict:
        return self.once("roofline", lambda: roofline(self))

    def orl_builds(self) -> tuple[dict, list[dict]]:
        return self.once("orl_builds", lambda: builds_with_edit("orl", bench_build._orl_content, self.repeat))


def _orl_faces(cache: Path):
    """The 390 ORL crops at the default 64x64, cropped by generator.faces (cached in a temporary folder)."""
    from facetrend import collect, faces
    from facetrend.config import FaceSettings

    return faces.find_faces(collect._folder(bench_build.orl_photos()), FaceSettings(), cache, "bench", 0)


def _stats(samples: list[float], digits: int = 4) -> dict:
    return {"median_s": round(statistics.median(samples), digits), "min_s": round(min(samples), digits),
            "samples_s": [round(s, digits) for s in samples]}


def _timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


# ---------------------------------------------------------------- 0. fresh processes, as ratios (issue 14)


def fresh(ctx: Context) -> dict:
    """`facetrend build` as users run it, each build a fresh process: the ORL and demo reports cold (empty cache),
    then a no-change rebuild; every figure beside its reference from the same run, and the ratio."""
    ideal = ctx.roofline()["ideal_s"]
    orl = [_fresh_pair("orl", bench_build._orl_content, i, ctx.repeat) for i in range(ctx.repeat)]
    demo = [_fresh_pair("demo", bench_build._demo_content, i, ctx.repeat) for i in range(ctx.repeat)]
    out = {"what": "`python -m facetrend build` in a subprocess per build (fresh cache and content each pair), "
                   "wall seconds, CPU percent of the process and its workers, stage seconds from last-build.json",
           "ideal_training_s": ideal, "orl": _fresh_summary(orl), "demo": _fresh_summary(demo)}
    model = out["orl"]["cold"]["model_s"]
    out["ratios"] = {
        "training_to_ideal": _ratio(model, ideal, RATIOS["training_to_ideal"]),
        "orl_process_to_training": _ratio(out["orl"]["cold"]["process_s"], model, RATIOS["orl_process_to_training"]),
        "demo_process_to_training_and_sweep": _ratio(out["demo"]["cold"]["process_s"],
                                                     out["demo"]["cold"]["model_s"] + out["demo"]["cold"]["sweep_s"],
                                                     RATIOS["demo_process_to_training_and_sweep"]),
        "no_change_orl_process_s": {"figure": out["orl"]["no_change"]["process_s"],
                                    "target": RATIOS["no_change_orl_process_s"],
                                    "meets_target": out["orl"]["no_change"]["process_s"]
                                    < RATIOS["no_change_orl_process_s"]}}
    roof = ctx.roofline()
    out["orl_budget"] = _budget(out["orl"]["cold"], RATIOS["orl_process_to_training"]) | _arithmetic(roof)
    out["stage_cpu"] = stage_cpu(ctx)
    return out


def _arithmetic(roof: dict) -> dict:
    """Floating-point operations of the ORL baselines against its training's (both counted from their shapes):
    a ratio that holds on any CPU, since both run as matrix products at the same rate."""
    from facetrend import baselines

    train, test, k = roof["train_faces"], roof["test_faces"], min(UNITS, roof["train_faces"])
    per_update = 2 * (2 * train * PIXELS * k + 2 * k * PIXELS * k + 2 * train * k * k)  # W's and H's updates
    codes = 2 * (train + test) * (PIXELS * k + baselines.NMF_UPDATES * k * k)  # the codes that score the fit
    pca = 2 * train * PIXELS * (train + 2 * k)  # the Gram matrix, the axes, the errors
    flops = baselines.NMF_UPDATES * per_update + codes + pca
    return {"baselines_flops": flops, "training_flops": roof["flops"]["total"],
            "baselines_to_training_flops": round(flops / roof["flops"]["total"], 2)}


IMPORTS = ("facetrend.build", "facetrend.train", "matplotlib.figure", "matplotlib.backends.backend_agg")


def _budget(cold: dict, target: float) -> dict:
    """Where a cold build's time goes beside its training, against what the ratio target leaves for it: each
    stage but the model, the fresh process's start and imports (measured alone, in a process of their own),
    and the rest outside the stages (imports not overlapped, the write)."""
    code = f"import {', '.join(IMPORTS)}"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
    imports = time.perf_counter() - start
    stages = {k: round(v, 3) for k, v in sorted(cold["timings_s"].items(), key=lambda kv: -kv[1])
              if k != "model" and v >= 0.01}
    rest = cold["process_s"] - cold["model_s"]
    return {"training_s": cold["model_s"], "allowed_for_the_rest_s": round((target - 1) * cold["model_s"], 3),
            "the_rest_s": round(rest, 3), "stages_but_training_s": stages,
            "outside_stages_s": round(cold["process_s"] - sum(cold["timings_s"].values()), 3),
            "start_and_imports_alone_s": round(imports, 3), "imports": list(IMPORTS)}


def _ratio(figure: float, reference: float, target: float) -> dict:
    ratio = figure / reference if reference else float("inf")
    return {"figure_s": round(figure, 3), "reference_s": round(reference, 3), "ratio": round(ratio, 2),
            "target_ratio": target, "meets_target": ratio <= target}


def _fresh_pair(slug: str, make_content, i: int, repeat: int) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"bench-fresh-{slug}-") as tmp:
        root = Path(tmp)
        make_content(root / "content")
        cold = fresh_build(root)
        again = fresh_build(root)
    log.info("fresh %s %d/%d: cold %.2f s (%.0f%% CPU), no change %.2f s", slug, i + 1, repeat, cold["process_s"],
             cold["cpu_percent"], again["process_s"])
    return {"cold": cold, "no_change": again}


def fresh_build(root: Path) -> dict:
    """One `facetrend build` of root/content in a fresh process, as a user runs it: wall seconds, CPU percent
    (the process and every process it waited for), stage seconds, and whether it changed anything."""
    import resource

    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # users have .pyc files
    command = [sys.executable, "-m", "facetrend", "build", "-q", "--content", str(root / "content"),
               "--out", str(root / "site"), "--cache", str(root / "cache")]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"build failed:\n{done.stderr[-3000:]}")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    record = bench_build.only_record(json.loads((root / "cache" / "last-build.json").read_text()))
    timings = record["timings"]
    sweep = sum(v for k, v in timings.items() if k.startswith("experiment: "))
    return {"process_s": round(wall, 3), "cpu_percent": round(100 * cpu / wall, 1),
            "model_s": timings.get("model", 0.0), "sweep_s": round(timings.get("experiments", 0.0), 3),
            "sweep_runs_sum_s": round(sweep, 3), "timings_s": timings, "cached": record["cached"],
            "changed": not record.get("skipped", False)}


def _fresh_summary(pairs: list[dict]) -> dict:
    """The median run of each kind (by process seconds), with every sample."""
    out = {}
    for kind in ("cold", "no_change"):
        runs = sorted((p[kind] for p in pairs), key=lambda r: r["process_s"])
        out[kind] = runs[(len(runs) - 1) // 2] | {"samples_process_s": [p[kind]["process_s"] for p in pairs]}
    return out


def stage_cpu(ctx: Context) -> dict:
    """CPU percent (this process and its waited-for workers) of the heavy stages, each alone, in this process:
    ORL training, ORL baselines, the demo's experiment sweep (cold cache)."""
    import torch
    from facetrend import baselines, train
    from facetrend.config import ModelSettings

    found, s = ctx.orl_faces(), ModelSettings()
    mask = train.split_by_person(found.persons, s.test_fraction, s.seed)
    x = torch.from_numpy(found.pixels.reshape(len(found.pixels), -1))
    demo = _demo_faces(ctx)
    base = ModelSettings(hidden=[400], dropout=0.2, epochs=60, batch_size=20, lr=0.002, weight_decay=0.5)
    jobs = {"training (ORL, default model)": lambda: train.fit(x, mask, s, "cpu"),
            "baselines (ORL, PCA + NMF, 400 components)": lambda: baselines.fit_baselines(
                found.pixels, mask, 400, s.seed),
            "experiment sweep (demo faces, default sweep, the report's model cached as in a build)":
                _sweep(demo, base, ctx.tmp)}
    out = {}
    for name, job in jobs.items():
        prepare, run = job if isinstance(job, tuple) else (lambda: None, partial(_ignore, job))
        run(prepare())  # warm-up: the figure is the stage's steady use of the cores
        out[name] = _cpu_use(partial(run, prepare())) | {"target_percent": RATIOS["heavy_stage_cpu_percent"]}
        log.info("stage cpu: %s %.2f s at %.0f%%", name, out[name]["seconds"], out[name]["cpu_percent"])
    return out


def _ignore(job, _):
    return job()


def _demo_faces(ctx: Context):
    from facetrend import config, faces

    content = ctx.tmp / "demo-content"
    if not content.exists():
        bench_build._demo_content(content)
    site = config.load_site(content)
    report = config.find_reports(content, site)[0]
    return faces.report_faces(report, report.settings.faces, ctx.tmp / "demo-cache", 0)


def _sweep(found, base, tmp: Path):
    """The default sweep as a build runs it, as a job for _cpu_use: its first run, the report's model, is already
    in the cache (the model stage trained it just before), the others are not. Only the sweep is timed."""
    from facetrend import experiments, train

    def prepare() -> Path:
        cache = Path(tempfile.mkdtemp(dir=tmp))
        train.train_or_load(found, experiments.default_sweep(base)[0].settings, cache)
        return cache

    def run(cache: Path):
        return experiments.run_sweep(found, experiments.default_sweep(base), int(found.pixels.shape[-1]), cache)

    return prepare, run


def _cpu_use(job) -> dict:
    before = os.times()
    seconds, _ = _timed(job)
    after = os.times()
    cpu = sum(after[:4]) - sum(before[:4])  # user + system, of this process and its waited-for children
    return {"seconds": round(seconds, 3), "cpu_percent": round(100 * cpu / seconds, 1),
            "meets_target": 100 * cpu / seconds >= RATIOS["heavy_stage_cpu_percent"]}


# ---------------------------------------------------------------- 1. roofline


def _products() -> dict:
    """The matrix products of one training step, as torch runs them (nn.Linear weights are (out, in)).

    Each writes into a preallocated output: a fresh 6.5 MB result per call would be page-faulted in
    from the OS (glibc serves it with mmap) until malloc's threshold adapts, which is not the hardware's limit.
    """
    import torch

    mm = torch.matmul
    return {
        "encoder_forward x@W1.T (100x4096 @ 4096x400)": lambda t: mm(t["x"], t["w1"].T, out=t["bh"]),
        "decoder_forward h@W2.T (100x400 @ 400x4096)": lambda t: mm(t["h"], t["w2"].T, out=t["bp"]),
        "decoder_weight_grad dY.T@h (4096x100 @ 100x400)": lambda t: mm(t["dy"].T, t["h"], out=t["ph"]),
        "decoder_input_grad dY@W2 (100x4096 @ 4096x400)": lambda t: mm(t["dy"], t["w2"], out=t["bh"]),
        "encoder_weight_grad dZ.T@x (400x100 @ 100x4096)": lambda t: mm(t["dz"].T, t["x"], out=t["hp"]),
    }


FORWARD = 2  # the first two products: a forward pass (test loss); all five: a training step


CALLS = 50  # products timed together in one sample


def _gflops(product, tensors: dict, samples: int) -> list[float]:
    for _ in range(10):
        product(tensors)
    flops = 2 * BATCH * PIXELS * UNITS * CALLS
    return [round(flops / _timed(lambda: [product(tensors) for _ in range(CALLS)])[0] / 1e9, 1)
            for _ in range(samples)]


def _tensors() -> dict:
    import torch

    g = torch.Generator().manual_seed(SEED)
    shapes = {"x": (BATCH, PIXELS), "w1": (UNITS, PIXELS), "h": (BATCH, UNITS), "w2": (PIXELS, UNITS),
              "dy": (BATCH, PIXELS), "dz": (BATCH, UNITS)}
    outputs = {"bh": (BATCH, UNITS), "bp": (BATCH, PIXELS), "ph": (PIXELS, UNITS), "hp": (UNITS, PIXELS)}
    return {k: torch.randn(s, generator=g) for k, s in shapes.items()} | {k: torch.empty(s) for k, s in outputs.items()}


def _rates(tensors: dict, samples: int) -> dict[str, list[float]]:
    """GFLOP/s samples of every product."""
    return {name: _gflops(product, tensors, samples) for name, product in _products().items()}


def _rate_summary(rates: dict[str, list[float]]) -> dict:
    return {name: {"median_gflops": statistics.median(r), "max_gflops": max(r), "samples_gflops": r}
            for name, r in rates.items()}


def roofline(ctx: Context) -> dict:
    """GFLOP/s of each product of the model's shapes, and the ideal time of the default ORL training."""
    import torch

    products = _rate_summary(_rates(_tensors(), 3 if ctx.args.quick else 7))
    for name, rate in products.items():
        log.info("roofline: %s %.0f GFLOP/s", name, rate["median_gflops"])
    return {"threads": torch.get_num_threads(), "calls_per_sample": CALLS, "products": products,
            **_ideal(ctx, [r["median_gflops"] for r in products.values()])}


def _ideal(ctx: Context, gflops: list[float]) -> dict:
    """Training FLOPs of the default ORL run over the measured rates: the ideal training time."""
    from facetrend.config import ModelSettings
    from facetrend.train import split_by_person

    s, found = ModelSettings(), ctx.orl_faces()
    test = int(split_by_person(found.persons, s.test_fraction, s.seed).sum())
    train = len(found.persons) - test
    per_face = 2 * PIXELS * UNITS  # one product, one face
    seconds_per_face_step = sum(per_face / (r * 1e9) for r in gflops)  # all five products
    seconds_per_face_eval = sum(per_face / (r * 1e9) for r in gflops[:FORWARD])
    flops = {"train": s.epochs * train * per_face * len(gflops), "test": s.epochs * test * per_face * FORWARD}
    ideal = s.epochs * (train * seconds_per_face_step + test * seconds_per_face_eval)
    return {"train_faces": train, "test_faces": test, "epochs": s.epochs,
            "flops": flops | {"total": sum(flops.values())},
            "training_gflops": round(sum(flops.values()) / ideal / 1e9, 1), "ideal_s": round(ideal, 4)}


# ---------------------------------------------------------------- 2. training


def training(ctx: Context) -> dict:
    """generator.train.fit on the 390 ORL crops, and a plain reference loop, interleaved, after one warm-up each."""
    import torch
    from facetrend import train
    from facetrend.config import ModelSettings

    s, found = ModelSettings(), ctx.orl_faces()
    mask = train.split_by_person(found.persons, s.test_fraction, s.seed)
    x = torch.from_numpy(found.pixels.reshape(len(found.pixels), -1))
    runs = {"roofline": partial(_rates, _tensors(), 1), "fit": lambda: _fit_losses(train.fit(x, mask, s, "cpu")),
            "reference": lambda: reference_fit(x, mask, s)}
    samples = _interleaved(runs, max(3, ctx.repeat))
    rates = _rate_summary({k: [r[k][0] for r in samples["roofline"]["values"]] for k in _products()})
    ideal = _ideal(ctx, [r["median_gflops"] for r in rates.values()])["ideal_s"]
    out = {"faces": len(x), "train_faces": int((~mask).sum()), "test_faces": int(mask.sum()),
           "settings": {"hidden": s.hidden, "epochs": s.epochs, "batch_size": s.batch_size, "dropout": s.dropout},
           "ideal_s": ideal, "roofline_interleaved": rates, "target_ratio_to_ideal": TARGETS["training_ratio_to_ideal"]}
    for name in ("fit", "reference"):
        out[name] = _training_summary(samples[name], ideal)
    out["ratio_to_ideal"] = out["fit"]["ratio_to_ideal"]
    out["meets_target"] = out["ratio_to_ideal"] <= TARGETS["training_ratio_to_ideal"]
    out["speedup_over_reference"] = round(out["reference"]["median_s"] / out["fit"]["median_s"], 2)
    out["loss_curves_max_rel_diff"] = round(_max_rel_diff(samples["fit"]["values"][-1],
                                                          samples["reference"]["values"][-1]), 4)
    return out


def _training_summary(sample: dict, ideal: float) -> dict:
    train_loss, test_loss = sample["values"][-1]
    return _stats(sample["seconds"]) | {
        "other_processes_cpu_share_samples": sample["other_share"],
        "ratio_to_ideal": round(statistics.median(sample["seconds"]) / ideal, 2),
        "final_train_loss": round(train_loss[-1], 6), "final_test_loss": round(test_loss[-1], 6)}


def _fit_losses(fitted: tuple) -> tuple[list[float], list[float]]:
    _, train_loss, test_loss = fitted
    return train_loss, test_loss


def _interleaved(runs: dict, repeat: int) -> dict:
    """One warm-up each, then `repeat` rounds of every run in turn: {name: {seconds, values, other_share}}."""
    for name, fn in runs.items():
        log.info("training: warm-up %s (%.2f s)", name, _timed(fn)[0])
    out = {name: {"seconds": [], "values": [], "other_share": []} for name in runs}
    for i in range(repeat):
        for name, fn in runs.items():
            t, value, other = _measured(fn)
            out[name]["seconds"].append(t)
            out[name]["values"].append(value)
            out[name]["other_share"].append(other)
            log.info("training: %s run %d/%d %.2f s (other processes: %s of the CPUs)", name, i + 1, repeat, t, other)
    return out


def _measured(fn) -> tuple[float, object, float | None]:
    """Seconds, value, and the share of the machine's CPU time that other processes used meanwhile."""
    before = _cpu_seconds()
    seconds, value = _timed(fn)
    after = _cpu_seconds()
    if not (before and after):
        return seconds, value, None
    other = max(0.0, (after[0] - before[0]) - (after[1] - before[1]))
    return seconds, value, round(other / (seconds * (os.cpu_count() or 1)), 3)


def _max_rel_diff(a: tuple[list[float], list[float]], b: tuple[list[float], list[float]]) -> float:
    pairs = [(u, v) for curve_a, curve_b in zip(a, b, strict=True) for u, v in zip(curve_a, curve_b, strict=True)]
    return max((abs(u - v) / max(abs(v), 1e-12) for u, v in pairs), default=0.0)


def reference_fit(x_uint8, test_mask, s) -> tuple[list[float], list[float]]:
    """A plain PyTorch loop: float data made once, unfused AdamW (foreach=False), same seeds and batch order."""
    import torch
    from facetrend.model import Autoencoder

    x = x_uint8.float() / 255
    train_x, test_x = x[torch.from_numpy(~test_mask)], x[torch.from_numpy(test_mask)]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(s.seed)
        model = Autoencoder(x.shape[1], s.hidden, s.activation, s.dropout, s.tied)
        if s.center:
            model.mean.copy_(train_x.mean(dim=0))
        opt = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay, foreach=False)
        gen = torch.Generator().manual_seed(s.seed)
        train_loss, test_loss = [], []
        for _ in range(s.epochs):
            train_loss.append(_reference_epoch(model, opt, train_x, s.batch_size, gen))
            model.eval()
            with torch.no_grad():
                test_loss.append(torch.nn.functional.mse_loss(model(test_x), test_x).item())
    return train_loss, test_loss


def _reference_epoch(model, opt, x, batch_size: int, gen) -> float:
    import torch

    model.train()
    order, total = torch.randperm(len(x), generator=gen), 0.0
    for start in range(0, len(x), batch_size):
        batch = x[order[start:start + batch_size]]
        loss = torch.nn.functional.mse_loss(model(batch), batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item() * len(batch)
    return total / len(x)


# ---------------------------------------------------------------- 3. builds and 6b. render


def builds(ctx: Context) -> dict:
    """The demo and ORL builds of bench_build (cold, warm), plus an edited rebuild, judged on this issue's targets."""
    orl, _ = ctx.orl_builds()
    demo, _ = builds_with_edit("demo", bench_build._demo_content, ctx.repeat)
    for kind, target in (("cold", TARGETS["orl_cold_s"]), ("warm", TARGETS["orl_warm_s"]),
                         ("edited", TARGETS["orl_warm_s"])):
        orl[kind].update(target_s=target, meets_target=orl[kind]["median_s"] < target)
    return {"repeat": ctx.repeat, "demo": demo, "orl": orl}


EDITED = ("rebuild after appending a paragraph to the report's narrative: the report is computed again "
          "with faces and model from the cache, and rendered")


def builds_with_edit(slug: str, make_content, repeat: int) -> tuple[dict, list[dict]]:
    """bench_build's cold+warm pairs, each followed by an edited rebuild; summaries and every run."""
    runs = [_cold_warm_edited(slug, make_content, i + 1, repeat) for i in range(repeat)]
    summary = bench_build.summarise(slug, runs)
    edited = [r["edited"] for r in runs]
    median = sorted(edited, key=lambda e: e[0])[(repeat - 1) // 2]
    summary["edited"] = {"what": EDITED} | _stats([e[0] for e in edited], 3) | {
        "timings_s": median[1]["timings"], "cached": median[1]["cached"]}
    return summary, runs


def _cold_warm_edited(slug: str, make_content, run: int, repeat: int) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"bench-{slug}-") as tmp:
        root = Path(tmp)
        make_content(root / "content")
        cold, warm = bench_build._timed_build(root), bench_build._timed_build(root)
        _edit_narrative(root / "content" / slug / "index.md")
        edited = bench_build._timed_build(root)
    log.info("%s run %d/%d: cold %.2f s, warm %.2f s, edited %.2f s", slug, run, repeat, cold[0], warm[0], edited[0])
    return {"cold": cold, "warm": warm, "edited": edited}


def _edit_narrative(index: Path) -> None:
    with index.open("a", encoding="utf-8") as f:
        f.write("\nAn added paragraph, so that the report is built again.\n")


def render(ctx: Context) -> dict:
    """generator.render.render_report's seconds: the `render` stage of the ORL builds that computed the report."""
    _, runs = ctx.orl_builds()
    out = {"what": "render stage of the ORL cold and edited builds (last-build.json)", "target_s": TARGETS["render_s"]}
    for kind in ("cold", "edited"):
        out[kind] = _stats([r[kind][1]["timings"]["render"] for r in runs])
    samples = [r[k][1]["timings"]["render"] for r in runs for k in ("cold", "edited")]
    out["median_s"] = round(statistics.median(samples), 4)
    out["meets_target"] = out["median_s"] < TARGETS["render_s"]
    return out


# ---------------------------------------------------------------- ORL-derived photos (4 and 5)


def orl_images() -> list[tuple[str, object]]:
    """(person, grey image) of every ORL photo, in path order."""
    import cv2

    root = bench_build.orl_photos()
    return [(p.parent.name, cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)) for p in sorted(root.glob("s*/*.pgm"))]


def _variant(image, rng):
    """An ORL crop flipped or not, rolled by -3..3 px each way, and 20 grey levels brighter or darker at most."""
    import numpy as np

    out = image[:, ::-1] if rng.random() < 0.5 else image
    out = np.roll(out, (int(rng.integers(-3, 4)), int(rng.integers(-3, 4))), axis=(0, 1))
    return np.clip(out.astype(np.int16) + int(rng.integers(-20, 21)), 0, 255).astype(np.uint8)


def write_variants(folder: Path, n: int, originals: list, seed: int = SEED) -> Path:
    """``n`` distinct ORL variants as PGM files in folder/<person>/, seeded: the same files every run."""
    import cv2
    import numpy as np

    rng, seen, i = np.random.default_rng(seed), set(), 0
    while len(seen) < n:
        person, image = originals[i % len(originals)]
        i += 1
        image = _variant(image, rng)
        key = hashlib.sha256(image.tobytes()).digest()
        if key in seen:
            continue
        seen.add(key)
        path = folder / person / f"{len(seen):06d}.pgm"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), image)
    return folder


def lfw_images() -> list[tuple[str, object]]:
    """(person, grey 250x250 photo) of every LFW photo under ../shared/data/lfw (or FACETREND_SHARED_DATA/lfw)."""
    import cv2

    root = bench_build.orl_photos().parent / "lfw"
    paths = sorted(root.glob("*/*.jpg"))
    if not paths:
        raise RuntimeError(f"no LFW photos in {root}")
    return [(p.parent.name, cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)) for p in paths]


def write_lfw_crops(folder: Path, n: int, originals: list) -> Path:
    """``n`` face crops (PNG, LFW_CROP px square) in folder/<person>/: the centre of each LFW photo (where LFW puts
    the face), then the same mirrored, then shifted by LFW_SHIFTS, photo by photo, until there are ``n``."""
    import cv2

    side, count = LFW_CROP, 0
    variants = [(dx, dy, flip) for dx, dy in LFW_SHIFTS for flip in (False, True)]
    for dx, dy, flip in variants:
        for person, image in originals:
            if count == n:
                return folder
            top, left = (image.shape[0] - side) // 2 + dy, (image.shape[1] - side) // 2 + dx
            crop = image[top:top + side, left:left + side]
            count += 1
            path = folder / person / f"{count:06d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), crop[:, ::-1] if flip else crop)
    if count < n:
        raise RuntimeError(f"{len(originals)} LFW photos give {count} crops, fewer than {n}")
    return folder


def write_scenes(folder: Path, n: int, originals: list, seed: int = SEED) -> dict[str, tuple]:
    """``n`` 250x250 PNG scenes (a blurred noisy gradient, an ORL face pasted in): path -> face box (x, y, w, h)."""
    import cv2
    import numpy as np

    rng, boxes = np.random.default_rng(seed), {}
    for i in range(n):
        person, face = originals[i % len(originals)]
        background = rng.random((SCENE_SIDE, SCENE_SIDE)) * 60 + np.linspace(60, 160, SCENE_SIDE)[None, :]
        scene = cv2.GaussianBlur(background.astype(np.uint8), (0, 0), 3)
        scale = float(rng.uniform(1.2, 1.8))
        f = cv2.resize(face, None, fx=scale, fy=scale)
        x, y = int(rng.integers(0, SCENE_SIDE - f.shape[1] + 1)), int(rng.integers(0, SCENE_SIDE - f.shape[0] + 1))
        scene[y:y + f.shape[0], x:x + f.shape[1]] = f
        path = folder / person / f"scene{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), scene)
        boxes[path.relative_to(folder).as_posix()] = (x, y, f.shape[1], f.shape[0])
    return boxes


# ---------------------------------------------------------------- 4. faces


def faces_section(ctx: Context) -> dict:
    """Face-stage photos/s with one process and all cores: ORL-derived crops, and scenes that need detection."""
    originals = ctx.once("orl_images", orl_images)
    root = ctx.tmp / "faces"
    write_variants(root / "crops", FACE_CROPS, originals)
    boxes = write_scenes(root / "scenes", FACE_SCENES, originals)
    return {"cpu_count": os.cpu_count(),
            "crops": {"what": f"{FACE_CROPS} distinct ORL-derived 92x112 PGM crops: decode, centre square, resize"}
            | _throughput("crops", root / "crops", ctx.repeat),
            "scenes": {"what": f"{FACE_SCENES} {SCENE_SIDE}x{SCENE_SIDE} PNG scenes, one ORL face pasted in each: "
                               "decode, Haar detection, crop, resize", "detector_box_on_pasted_face":
                       _on_face(root / "scenes", boxes)} | _throughput("scenes", root / "scenes", ctx.repeat)}


def _find(collection, cache: Path, jobs: int):
    from facetrend import faces
    from facetrend.config import FaceSettings

    return faces.find_faces(collection, FaceSettings(), cache, "bench", jobs)


def _throughput(label: str, folder: Path, repeat: int) -> dict:
    """find_faces with jobs=1 and jobs=0 (all cores), alternating which goes first, a fresh empty cache each run."""
    from facetrend import collect

    collection = collect._folder(folder)
    n, seconds, others, found = len(collection.photos), {1: [], 0: []}, {1: [], 0: []}, {}
    for i in range(repeat):
        for jobs in (1, 0) if i % 2 == 0 else (0, 1):
            with tempfile.TemporaryDirectory(prefix="faces-cache-") as cache:
                t, result, other = _measured(partial(_find, collection, Path(cache), jobs))
            seconds[jobs].append(t)
            others[jobs].append(other)
            found[jobs] = {"faces": len(result.ids), "detected": sum(result.detected)}
            log.info("faces: %s jobs=%d run %d/%d %.2f s (%.0f photos/s)", label, jobs, i + 1, repeat, t, n / t)
    out = {"photos": n}
    for jobs, name in ((1, "jobs_1"), (0, "jobs_all")):
        out[name] = _stats(seconds[jobs]) | found[jobs] | {"other_processes_cpu_share_samples": others[jobs]}
        out[name]["photos_per_s"] = round(n / out[name]["median_s"], 1)
    out["speedup_all_cores"] = round(out["jobs_1"]["median_s"] / out["jobs_all"]["median_s"], 2)
    return out


def _on_face(folder: Path, boxes: dict[str, tuple]) -> str:
    """How many scenes the detector's box centre falls inside the pasted face (checks the scenes are fair)."""
    import cv2

    largest_box, hits = _box_finder(), 0
    for rel, (x, y, w, h) in boxes.items():
        box = largest_box(cv2.imread(str(folder / rel), cv2.IMREAD_GRAYSCALE))
        hits += box is not None and x <= box[0] + box[2] / 2 <= x + w and y <= box[1] + box[3] / 2 <= y + h
    return f"{hits} of {len(boxes)}"


def _box_finder():
    """The build's detector with default settings, as a function: grey image -> largest face box or None."""
    from facetrend.config import FaceSettings

    try:
        from facetrend.detect import Detector
    except ImportError:  # before generator.detect existed
        from facetrend.faces import _Detector

        return _Detector(FaceSettings()).largest_face
    detector = Detector(FaceSettings())
    return lambda image: next((face.box for face in detector.faces(image)), None)


# ---------------------------------------------------------------- 5. scale


# The child's own peak is VmHWM: on Linux its ru_maxrss (RUSAGE_SELF) starts at the RSS of the process that
# started it (this benchmark, ~700 MB with torch and the ORL data loaded), so it reads high for small builds.
CHILD = """
import json, re, resource, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from facetrend.build import BuildOptions, build
root = Path(sys.argv[1])
start = time.perf_counter()
result = build(BuildOptions(content=root / "content", out=root / "site", cache=root / "cache"))
seconds = time.perf_counter() - start
status = Path("/proc/self/status").read_text()
print(json.dumps({"build_s": seconds, "faces": result.reports[0]["photos"]["faces"] if result.reports else None,
                  "vm_hwm_kb": int(re.search(r"VmHWM:\\s+(\\d+)", status).group(1)),
                  "ru_maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "workers_peak_rss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def scale(ctx: Context) -> dict:
    """Cold builds of 2,000 / 5,000 / 20,000 ORL-derived faces in fresh processes, then a warm rebuild of the last."""
    sizes = ctx.args.scale_sizes or (QUICK_SCALE_SIZES if ctx.args.quick else SCALE_SIZES)
    source = ctx.args.scale_source
    originals = ctx.once(f"{source}_images", orl_images if source == "orl" else lfw_images)
    faces = _keep_near_duplicates() + ("  crops: \"yes\"\n" if source == "lfw" else "")
    out = {"what": "cold builds with default settings (but faces.near_duplicate_bits: 0 where it exists), each in "
                   "a fresh `python -c` process; one run per size", "source": source,
           "front_matter_faces": faces, "sizes": {}}
    for n in sizes:
        root = ctx.tmp / f"scale-{n}"
        _scale_content(root, n, originals, source, faces)
        out["sizes"][str(n)] = _child_build(root, n, "cold")
    out["warm"] = _child_build(root, sizes[-1], "warm") | {"faces_in_set": sizes[-1]}
    if not ctx.args.no_edited:
        _edit_narrative(root / "content" / "scale" / "index.md")
        out["edited"] = _child_build(root, sizes[-1], "edited") | {"faces_in_set": sizes[-1], "what": EDITED}
    out["growth"] = _growth(out["sizes"])
    largest = out["sizes"][str(sizes[-1])]
    out["ratios"] = {"process_to_training": _ratio(largest["process_s"], largest["timings_s"].get("model", 0.0),
                                                   RATIOS["scale_process_to_training"]) | {"faces": sizes[-1]},
                     "no_change_process_s": {"figure": out["warm"]["process_s"], "faces": sizes[-1],
                                             "target": RATIOS["no_change_scale_process_s"],
                                             "meets_target": out["warm"]["process_s"]
                                             < RATIOS["no_change_scale_process_s"]}}
    out["budget"] = _budget(largest | {"model_s": largest["timings_s"].get("model", 0.0)},
                            RATIOS["scale_process_to_training"]) | {"faces": sizes[-1]}
    return out | _scale_verdict(out["sizes"])


def _scale_content(root: Path, n: int, originals: list, source: str, faces: str) -> None:
    log.info("scale: writing %d %s variants", n, source.upper())
    write = write_variants if source == "orl" else write_lfw_crops
    photos = write(root / "photos", n, originals)
    (root / "content" / "scale").mkdir(parents=True)
    (root / "content" / "site.toml").write_bytes((REPO / "content" / "site.toml").read_bytes())
    index = SCALE_INDEX.format(n=n, photos=photos, faces=faces, source=source.upper())
    (root / "content" / "scale" / "index.md").write_text(index, encoding="utf-8")


def _keep_near_duplicates() -> str:
    """Front matter that keeps every distinct photo: flipped, shifted and brightened copies are near-duplicates
    by design, and a build with default settings would count many of them once (``near_duplicate_bits``)."""
    import dataclasses

    from facetrend.config import FaceSettings

    fields = {f.name for f in dataclasses.fields(FaceSettings)}
    return "faces:\n  near_duplicate_bits: 0\n" if "near_duplicate_bits" in fields else ""


def _child_build(root: Path, n: int, kind: str) -> dict:
    """One build in a fresh process: its seconds, peak RSS and its workers' peak, and last-build.json."""
    log.info("scale: %s build of %d faces", kind, n)
    start = time.perf_counter()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # users have .pyc files
    done = subprocess.run([sys.executable, "-c", CHILD, str(root), str(REPO)], capture_output=True, text=True, env=env)
    process_s = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{kind} build of {n} faces failed:\n{done.stderr[-3000:]}")
    child = json.loads(done.stdout.strip().splitlines()[-1])
    record = bench_build.only_record(json.loads((root / "cache" / "last-build.json").read_text()))
    peak, workers = child["vm_hwm_kb"] / 1024, child["workers_peak_rss_kb"] / 1024
    log.info("scale: %d faces %s: %.1f s, peak RSS %.0f MB (workers %.0f MB)", n, kind, process_s, peak, workers)
    return {"faces": child["faces"], "process_s": round(process_s, 2), "build_s": round(child["build_s"], 2),
            "peak_rss_mb": round(peak, 1), "workers_peak_rss_mb": round(workers, 1),
            "ru_maxrss_mb": round(child["ru_maxrss_kb"] / 1024, 1),
            "s_per_1000_faces": round(process_s / n * 1000, 3), "mb_per_1000_faces": round(peak / n * 1000, 1),
            "timings_s": record["timings"], "cached": record["cached"]}


def _growth(sizes: dict[str, dict]) -> list[dict]:
    """Between consecutive sizes: extra seconds and extra MB of peak RSS per 1,000 extra faces."""
    steps = []
    for a, b in zip(list(sizes), list(sizes)[1:], strict=False):
        extra = (int(b) - int(a)) / 1000
        steps.append({"from": int(a), "to": int(b),
                      "s_per_1000_extra_faces": round((sizes[b]["process_s"] - sizes[a]["process_s"]) / extra, 3),
                      "mb_per_1000_extra_faces": round((sizes[b]["peak_rss_mb"] - sizes[a]["peak_rss_mb"]) / extra, 1)})
    return steps


def _scale_verdict(sizes: dict[str, dict]) -> dict:
    if "20000" not in sizes:
        return {"meets_target": None, "note": "targets are for 20,000 faces, not run with --quick"}
    big = sizes["20000"]
    workers_bound = big["peak_rss_mb"] + (os.cpu_count() or 1) * big["workers_peak_rss_mb"]
    return {"target_s": TARGETS["scale_cold_s"], "target_peak_rss_mb": TARGETS["scale_peak_rss_mb"],
            "meets_time_target": big["process_s"] < TARGETS["scale_cold_s"],
            "meets_rss_target": big["peak_rss_mb"] < TARGETS["scale_peak_rss_mb"],
            "main_plus_workers_upper_bound_mb": round(workers_bound, 1),
            "meets_target": big["process_s"] < TARGETS["scale_cold_s"]
            and big["peak_rss_mb"] < TARGETS["scale_peak_rss_mb"]}


# ---------------------------------------------------------------- 6a. grid


def _unit_grid(weights, size: int):
    """The unit grid as render.py composes it: weight images, tiled with a label above each."""
    from facetrend import plots

    images = plots.weight_images(weights, size)
    return plots.tile_grid(images, plots.grid_columns(len(images)), [str(u) for u in range(len(images))])


def grid(ctx: Context) -> dict:
    """Seconds to compose the grid of 1,000 64x64 units; encoding it as render.py does (units.webp) timed apart."""
    import numpy as np
    from facetrend import plots

    weights = np.random.default_rng(SEED).standard_normal((1000, PIXELS)).astype(np.float32)
    compose, encode = [], []
    for _ in range(max(5, ctx.repeat)):
        t, picture = _timed(partial(_unit_grid, weights, 64))
        compose.append(t)
        encode.append(_timed(partial(plots.encode, picture, "img/units.webp"))[0])
    out = {"units": 1000, "size": 64, "picture_px": list(picture.size), "target_s": TARGETS["grid_s"]}
    out |= _stats(compose) | {"encode_units_webp": _stats(encode)}
    return out | {"meets_target": out["median_s"] < TARGETS["grid_s"]}


# ---------------------------------------------------------------- 7. GPU


def gpu(ctx: Context) -> dict:
    """The default training on CUDA for 20,000 and 200,000 synthetic faces, when torch sees a GPU."""
    import torch

    if not torch.cuda.is_available():
        return {"skipped": "no CUDA device"}
    out = {"device": torch.cuda.get_device_name(0), "cuda": torch.version.cuda, "data": "uniform random uint8"}
    return out | {str(n): device_training(n, "cuda", ctx.repeat) for n in GPU_SIZES}


def device_training(n: int, device: str, repeat: int) -> dict:
    """generator.train.fit with default settings on ``n`` synthetic 64x64 faces of 1,000 persons, on ``device``."""
    import torch
    from facetrend import train
    from facetrend.config import ModelSettings

    s = ModelSettings()
    x = torch.randint(0, 256, (n, PIXELS), dtype=torch.uint8, generator=torch.Generator().manual_seed(SEED))
    mask = train.split_by_person([f"p{i % 1000}" for i in range(n)], s.test_fraction, s.seed)
    train.fit(x[:1000], mask[:1000], ModelSettings(epochs=1), device)  # warm-up: context, kernels, allocator
    seconds = []
    for i in range(repeat):
        seconds.append(_timed(partial(_synced_fit, x, mask, s, device))[0])
        log.info("gpu: %d faces run %d/%d %.2f s", n, i + 1, repeat, seconds[-1])
    test = int(mask.sum())
    flops = s.epochs * 2 * PIXELS * UNITS * ((n - test) * len(_products()) + test * FORWARD)
    return {"faces": n, "train_faces": n - test, **_stats(seconds, 3),
            "tflops": round(flops / statistics.median(seconds) / 1e12, 2)}


def _synced_fit(x, mask, settings, device: str):
    import torch
    from facetrend import train

    fitted = train.fit(x, mask, settings, device)
    if device == "cuda":
        torch.cuda.synchronize()
    return fitted


SECTION_FUNCTIONS = {"fresh": fresh, "roofline": lambda ctx: ctx.roofline(), "training": training, "builds": builds,
                     "faces": faces_section, "scale": scale, "grid": grid, "render": render, "gpu": gpu}


if __name__ == "__main__":
    sys.exit(main())
