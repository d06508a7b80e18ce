"""Experiments: train variations of a report's model and compare them (the 2015 notes, automated).

A sweep is a list of runs, each a label and the full ModelSettings it trains
(runs not in the cache train side by side, one process per core: run_sweep).
The default sweep changes one factor at a time around the report's own
model: the activation (ReLU <-> sigmoid), the first hidden layer (100, 400,
1000 units), dropout (on at 0.5 / off) and masking noise (0 / 0.2); a factor
already at a value is not repeated. Each run is trained through
train.train_or_load, so runs are cached like the main model, and the run equal
to the report's model is that model's checkpoint.

Each result holds the per-epoch losses, the final test loss, how many
first-layer units are face-like and what training cost: ``gflop``, a
deterministic estimate for the published page, and ``seconds``, this build's
wall time, for the build record only (two builds of one input must publish the
same bytes).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import progress
from .config import ModelSettings
from .faces import Faces
from .rank import face_scores, interpretable

if TYPE_CHECKING:
    from .train import Trained

log = logging.getLogger(__name__)


SWEEP_HIDDEN = (100, 400, 1000)  # first-layer sizes the default sweep tries
SWEEP_DROPOUT = 0.5  # the "dropout on" rate, when the report's model has none
SWEEP_NOISE = 0.2  # the "masking noise on" rate, when the report's model has none
BASE_LABEL = "report model"
SHOWCASE = 8  # most face-like units shown per run


@dataclass(frozen=True)
class Run:
    """One run of a sweep: a short label for the table and the plot, and what it trains."""

    label: str
    settings: ModelSettings


@dataclass(frozen=True)
class RunResult:
    """What one run gave."""

    label: str
    settings: ModelSettings
    train_loss: list[float]  # per epoch, as train.Trained
    test_loss: list[float]  # per epoch, dropout off; empty without a test set
    final_test: float | None  # test loss of the weights kept (the best epoch with early stopping)
    units: int  # first-layer units
    face_like: int  # interpretable first-layer units: face score at least rank.INTERPRETABLE
    epochs_run: int  # fewer than settings.epochs when early stopping ended training
    gflop: float  # training cost estimate (see training_gflop): deterministic, publishable
    seconds: float  # wall time of training or loading it in this build (about 0 when cached): not for the site
    cached: bool  # loaded from the model cache, not trained in this build
    showcase: np.ndarray  # (SHOWCASE, pixels): the weight images of its most face-like units, best first

    @property
    def face_like_share(self) -> float:
        """The interpretable-unit yield as a share of the first-layer units."""
        return self.face_like / self.units if self.units else 0.0


# ---------------------------------------------------------------- sweeps


def default_sweep(base: ModelSettings) -> list[Run]:
    """The report's model, then each one-factor variation of it that differs from it."""
    runs = [Run(BASE_LABEL, base)]
    other = "sigmoid" if base.activation == "relu" else "relu"
    runs.append(Run(other, dataclasses.replace(base, activation=other)))
    for units in SWEEP_HIDDEN:
        if units != base.hidden[0]:
            runs.append(Run(f"{units} units", dataclasses.replace(base, hidden=[units, *base.hidden[1:]])))
    if base.dropout > 0:
        runs.append(Run("no dropout", dataclasses.replace(base, dropout=0.0)))
    else:
        runs.append(Run(f"dropout {SWEEP_DROPOUT:g}", dataclasses.replace(base, dropout=SWEEP_DROPOUT)))
    if base.noise > 0:
        runs.append(Run("no masking noise", dataclasses.replace(base, noise=0.0)))
    else:
        runs.append(Run(f"masking noise {SWEEP_NOISE:g}", dataclasses.replace(base, noise=SWEEP_NOISE)))
    return runs


def sweep_from_overrides(base: ModelSettings, overrides: list[dict[str, Any]]) -> list[Run]:
    """The report's model, then one run per override (ModelSettings field -> value).

    Labels name the overridden fields in the order given ("activation sigmoid,
    dropout 0"). An override that gives the same settings as an earlier run is
    left out (logged): it would train the same model twice. The overrides are
    checked by config (each must be valid `model:` settings).
    """
    runs = [Run(BASE_LABEL, base)]
    for override in overrides:
        run = Run(_label(override), dataclasses.replace(base, **override))
        twin = next((r.label for r in runs if r.settings == run.settings), None)
        if twin is not None:
            log.info("experiments: %r trains the same model as %r; run once", run.label, twin)
            continue
        runs.append(run)
    return runs


def _label(override: dict[str, Any]) -> str:
    return ", ".join(f"{key} {_value(v)}" for key, v in override.items()) or BASE_LABEL


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "on" if v else "off"
    if isinstance(v, (list, tuple)):
        return "/".join(_value(x) for x in v)
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


# ---------------------------------------------------------------- running


def run_sweep(faces: Faces, runs: list[Run], size: int, cache_dir: Path, retrain: bool = False) -> list[RunResult]:
    """Train (or load from the model cache) every run, and measure it; results in the order of ``runs``.

    ``size`` is the side of the square face crops, for the face scores. The
    first run is the report's model: it is loaded as the build just trained or
    loaded it (trained here only when the cache could not keep it). The other
    runs not in the cache are trained side by side, one process per core
    (PARALLEL), each on one torch thread: the sweep's models are small, and a
    step of one on two threads costs more than on one. Every run trains on
    one thread however many train at once, so its numbers do not depend on
    the machine's load or cores.
    """
    from . import train  # torch: only when experiments are run

    done: dict[int, tuple[Trained, float]] = {}
    for i, run in enumerate(runs):
        start = time.perf_counter()
        found = train.train_or_load(faces, run.settings, cache_dir) if i == 0 else (
            None if retrain else train.load_cached(faces, run.settings, cache_dir))
        if found is not None:
            done[i] = (found, time.perf_counter() - start)
    todo = [i for i in range(len(runs)) if i not in done]
    done.update(zip(todo, _train_runs(faces, [runs[i].settings for i in todo], cache_dir), strict=True))
    results = []
    for i, run in enumerate(progress.bar(runs, desc="experiments", unit="run")):
        trained, seconds = done[i]
        result = _measure(run, trained, train.unit_weights(trained.model), size, seconds)
        log.info("experiments: %s: test loss %s, %d/%d face-like units, %.1f GFLOP, %.1f s%s",
                 run.label, "n/a" if result.final_test is None else f"{result.final_test:.5f}",
                 result.face_like, result.units, result.gflop, seconds, " (cached)" if result.cached else "")
        results.append(result)
    return results


PARALLEL = "fork"  # how runs train side by side: forked workers (Linux); elsewhere one after another


def _train_runs(faces: Faces, settings: list[ModelSettings], cache_dir: Path) -> list[tuple[Trained, float]]:
    """Each of ``settings`` trained on one torch thread (and cached), with the seconds it took."""
    import multiprocessing

    workers = min(len(settings), _cores())
    if workers < 2 or PARALLEL not in multiprocessing.get_all_start_methods():
        from . import train

        with train.cpu_threads(1):
            return [_train_one(faces, s, cache_dir) for s in settings]
    # Forked, not spawned: a spawned worker imports torch again (seconds). No torch thread is running while the
    # sweep starts (between ops of the main process), and each worker sets one thread before any op.
    context = multiprocessing.get_context(PARALLEL)
    order = longest_first(settings)  # the longest runs start first, so no worker is left with one at the end
    with context.Pool(workers, initializer=_worker_start, initargs=(faces, cache_dir)) as pool:
        done = pool.map(_worker_train, [settings[i] for i in order], chunksize=1)
    shipped = [done[order.index(i)] for i in range(len(settings))]
    n_inputs = faces.pixels[0].size
    from . import train

    return [(train.from_checkpoint(_tensors(ck), n_inputs, cached=False), seconds) for ck, seconds in shipped]


def longest_first(settings: list[ModelSettings]) -> list[int]:
    """The runs' indices, the most work first (epochs x the widest layer: the products' size), ties in order."""
    return sorted(range(len(settings)), key=lambda i: -settings[i].epochs * max(settings[i].hidden))


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _train_one(faces: Faces, settings: ModelSettings, cache_dir: Path) -> tuple[Trained, float]:
    from . import train

    start = time.perf_counter()
    trained = train.train_or_load(faces, settings, cache_dir, retrain=True)
    return trained, time.perf_counter() - start


_WORKER: dict[str, Any] = {}  # a sweep worker's faces and cache folder, set once when it starts


def _worker_start(faces: Faces, cache_dir: Path) -> None:
    import torch

    torch.set_num_threads(1)
    _WORKER.update(faces=faces, cache_dir=cache_dir)


def _worker_train(settings: ModelSettings) -> tuple[dict, float]:
    """In a worker: train one run, and send back its checkpoint (arrays, not tensors: no shared memory)."""
    from . import train

    trained, seconds = _train_one(_WORKER["faces"], settings, _WORKER["cache_dir"])
    ck = train.checkpoint("", settings, trained)
    ck["state_dict"] = {k: v.numpy() for k, v in ck["state_dict"].items()}
    return ck, seconds


def _tensors(ck: dict) -> dict:
    import torch

    return ck | {"state_dict": {k: torch.from_numpy(v) for k, v in ck["state_dict"].items()}}


def _measure(run: Run, trained: Trained, weights: np.ndarray, size: int, seconds: float) -> RunResult:
    s = run.settings
    test = trained.test_loss
    final = trained.kept_test_loss(s.early_stopping)
    epochs = len(trained.train_loss)
    faces_seen = int((~trained.test_mask).sum()) * epochs
    gflop = training_gflop(weights.shape[1], s.hidden, faces_seen)
    scores = face_scores(weights, size)
    best = np.lexsort((np.arange(len(scores)), -scores))[:SHOWCASE]
    return RunResult(run.label, s, list(trained.train_loss), list(test), final, len(weights),
                     interpretable(scores), epochs, gflop, seconds, trained.cached, weights[best])


def matrix_weights(n_inputs: int, hidden: list[int]) -> int:
    """Entries of the weight matrices one face is multiplied by: the encoder's and the decoder's.

    Tied weights count twice too: the decoder multiplies by them again. Biases are left out.
    """
    sizes = [n_inputs, *hidden]
    return 2 * sum(a * b for a, b in zip(sizes, sizes[1:], strict=False))


def training_gflop(n_inputs: int, hidden: list[int], faces_seen: int) -> float:
    """Training cost estimate in GFLOP: 6 x matrix_weights x faces_seen / 1e9.

    A face costs about 2 floating-point operations per weight forward (a
    multiply and an add) and 4 backward (the gradients of the inputs and of
    the weights), so 6 per weight. ``faces_seen`` is training faces x epochs
    actually run. Activations, dropout, noise, the optimiser step and the
    per-epoch test evaluation are left out: the estimate ranks runs, it does
    not time them.
    """
    return 6 * matrix_weights(n_inputs, hidden) * faces_seen / 1e9
