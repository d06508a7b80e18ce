"""Stage 4, model: train the autoencoder on the face crops, or load it from the cache.

The cache holds self-describing checkpoints: the weights, the settings they
were trained with, the losses, the train/test split, a hash of the training
inputs (crops, people, settings) and the library versions. A checkpoint whose
hash does not match, or that cannot be read, is logged and trained again.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch

from . import __version__, cache, progress
from .config import ModelSettings
from .faces import Faces, person_keys
from .model import Autoencoder

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 4  # bump when training changes in a way old checkpoints do not reflect


@dataclass(frozen=True)
class Trained:
    """A trained model with its history."""

    model: Autoencoder
    train_loss: list[float]  # per epoch, mean over the training batches
    test_loss: list[float]  # per epoch, eval mode (dropout off); empty without a test set
    test_mask: np.ndarray  # bool per face: held out for testing
    cached: bool  # loaded from the cache, not trained in this build
    device: str

    def kept_test_loss(self, early_stopping: int) -> float | None:
        """The test loss of the weights kept: the best epoch's with early stopping, else the last epoch's."""
        if not self.test_loss:
            return None
        return min(self.test_loss) if early_stopping else self.test_loss[-1]


def train_or_load(faces: Faces, settings: ModelSettings, cache_dir: Path, retrain: bool = False) -> Trained:
    """The model for these faces and settings: from the cache when it matches, else trained."""
    if not retrain:
        loaded = load_cached(faces, settings, cache_dir)
        if loaded is not None:
            return loaded
    key = input_hash(faces, settings)
    path = cache.entry_path(cache_dir, cache.MODELS, key, ".pt")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    test_mask = split_by_person(faces.persons, settings.test_fraction, settings.seed)
    x = torch.from_numpy(faces.pixels.reshape(len(faces.pixels), -1))
    model, train_loss, test_loss = fit(x, test_mask, settings, device)
    trained = Trained(model.cpu().eval(), train_loss, test_loss, test_mask, False, device)
    _save(path, key, settings, trained)
    return trained


def load_cached(faces: Faces, settings: ModelSettings, cache_dir: Path) -> Trained | None:
    """The cached model for these faces and settings, or None (missing, or unusable: logged)."""
    key = input_hash(faces, settings)
    path = cache.entry_path(cache_dir, cache.MODELS, key, ".pt")
    loaded = cache.read(path, partial(_load, key, faces.pixels[0].size), "model cache")
    if loaded is not None:
        log.info("model: loaded from cache %s", path.name)
    return loaded


def input_hash(faces: Faces, settings: ModelSettings) -> str:
    """Hash of everything training depends on: crops, their people and the settings."""
    meta = {"format": CHECKPOINT_FORMAT, "settings": asdict(settings), "shape": faces.pixels.shape,
            "ids": faces.ids, "persons": faces.persons}
    return cache.key(meta, np.ascontiguousarray(faces.pixels))


def split_by_person(persons: list[str | None], fraction: float, seed: int) -> np.ndarray:
    """A test mask holding out about ``fraction`` of the faces, whole persons at a time.

    Faces without a known person are their own group. Groups are taken in a
    seeded random order until the test set reaches the fraction; at least one
    group stays in training.
    """
    groups = person_keys(persons)
    names = sorted(set(groups))
    mask = np.zeros(len(groups), bool)
    if fraction <= 0 or len(names) < 2:
        return mask
    order = np.random.default_rng(seed).permutation(len(names))
    target = fraction * len(groups)
    index = {name: [] for name in names}
    for i, g in enumerate(groups):
        index[g].append(i)
    for k in order[:-1]:
        if mask.sum() >= target:
            break
        mask[index[names[k]]] = True
    return mask


SMALL_PRODUCT = 2**25  # multiply-adds: matrix products smaller than this run on one CPU thread (threads_for)


def threads_for(rows: int, inner: int, cols: int) -> int:
    """CPU threads for work whose typical matrix product is (rows x inner) @ (inner x cols): one below
    SMALL_PRODUCT, else torch's own count (all cores by default). A small product is over before a second
    thread is worth waking, and on a busy machine each op waited for a descheduled thread (measured on the 2-core
    machine: the demo's model, 20 x 1024 x 400 products, trained in 1.6 s on one thread and 14-17 s on two
    with the other core busy). The count follows from the shapes alone, never from the load, so the numbers
    of a build depend only on its inputs and the machine."""
    return 1 if rows * inner * cols < SMALL_PRODUCT else torch.get_num_threads()


@contextmanager
def cpu_threads(n: int):
    """torch's CPU thread count set to ``n`` inside the block, and put back after."""
    before = torch.get_num_threads()
    if n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n != before:
            torch.set_num_threads(before)


def fit(x: torch.Tensor, test_mask: np.ndarray, settings: ModelSettings, device: str):
    """Train on the faces outside ``test_mask`` (on threads_for's CPU threads); see _fit."""
    with cpu_threads(threads_for(settings.batch_size, x.shape[1], settings.hidden[0])):
        return _fit(x, test_mask, settings, device)


def _fit(x: torch.Tensor, test_mask: np.ndarray, settings: ModelSettings, device: str):
    """Train on the faces outside ``test_mask``; return the model and per-epoch losses.

    ``x`` holds the crops as uint8 rows (faces, pixels). A training set of up
    to FLOATS_AT_ONCE bytes as floats is turned into floats in [0, 1] once; a
    larger one batch by batch as it is used, so memory stays at one byte a
    pixel however many faces there are.
    """
    with torch.random.fork_rng(devices=[]):
        model = _new_model(x.shape[1], settings).to(device)
        gen = torch.Generator().manual_seed(settings.seed)
        train_x = _rows(x[torch.from_numpy(~test_mask)].to(device))
        test_x = x[torch.from_numpy(test_mask)].to(device)
        if settings.center:
            model.mean.copy_(_mean_face(train_x))
        opt = _optimizer(model, settings)
        train_loss, test_loss, best = [], [], _Best()
        for _ in progress.bar(range(settings.epochs), desc="training", unit="epoch"):
            train_loss.append(_epoch(model, opt, train_x, settings, gen))
            if len(test_x):
                test_loss.append(evaluate(model, test_x))
                if settings.early_stopping and best.stop(model, test_loss, settings.early_stopping):
                    break
        best.restore(model)
    log.info("model: trained %d epochs on %d faces (%s), final train loss %.5f",
             len(train_loss), len(train_x), device, train_loss[-1])
    return model, train_loss, test_loss


def _new_model(n_inputs: int, settings: ModelSettings) -> Autoencoder:
    """The untrained model: its random start follows from the seed alone."""
    torch.manual_seed(settings.seed)
    return Autoencoder(n_inputs, settings.hidden, settings.activation, settings.dropout, settings.tied)


def initial_weights(n_inputs: int, settings: ModelSettings) -> np.ndarray:
    """The first layer's weight images before training, (units, pixels): rebuilt from the seed."""
    with torch.random.fork_rng(devices=[]):
        return unit_weights(_new_model(n_inputs, settings))


class _Best:
    """Early stopping: the weights of the epoch with the lowest test loss so far."""

    def __init__(self) -> None:
        self.state: dict | None = None
        self.epoch = -1

    def stop(self, model: Autoencoder, test_loss: list[float], patience: int) -> bool:
        if test_loss[-1] <= min(test_loss):
            self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            self.epoch = len(test_loss) - 1
        return len(test_loss) - 1 - self.epoch >= patience

    def restore(self, model: Autoencoder) -> None:
        if self.state is not None:
            model.load_state_dict(self.state)


def _optimizer(model: Autoencoder, settings: ModelSettings):
    """AdamW, fused into one kernel per step where torch offers it: on CPU the
    unfused step, memory-bound over every weight, cost more than the matrix products.

    The fused kernel is called as torch.optim.AdamW(fused=True) calls it (FusedAdamW), not through torch.optim:
    every torch.optim method imports torch._dynamo on first use, about a second of each fresh process."""
    if hasattr(torch, "_fused_adamw_"):
        return FusedAdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    params, kw = model.parameters(), {"lr": settings.lr, "weight_decay": settings.weight_decay}
    try:
        return torch.optim.AdamW(params, fused=True, **kw)
    except (RuntimeError, TypeError):  # an older torch or an unsupported device
        return torch.optim.AdamW(model.parameters(), foreach=True, **kw)


class FusedAdamW:
    """torch.optim.AdamW(fused=True, amsgrad=False) on one group of parameters: the same state (float32 step
    counts, first and second moments from zero), the same kernel call (torch._fused_adamw_), so the same numbers
    bit for bit (tests/test_train.py checks them against torch.optim's)."""

    def __init__(self, params, lr: float, weight_decay: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.weight_decay, self.betas, self.eps = lr, weight_decay, betas, eps
        self.exp_avgs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.exp_avg_sqs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.steps = [torch.zeros((), dtype=torch.float32, device=p.device) for p in self.params]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        if not live:
            return
        steps = [self.steps[i] for i in live]
        torch._foreach_add_(steps, 1)
        torch._fused_adamw_([self.params[i] for i in live], [self.params[i].grad for i in live],
                            [self.exp_avgs[i] for i in live], [self.exp_avg_sqs[i] for i in live], [], steps,
                            amsgrad=False, lr=self.lr, beta1=self.betas[0], beta2=self.betas[1],
                            weight_decay=self.weight_decay, eps=self.eps, maximize=False, grad_scale=None,
                            found_inf=None)


FLOATS_AT_ONCE = 256 * 2**20  # bytes: training sets up to this size as floats are converted once


def _rows(x: torch.Tensor) -> torch.Tensor:
    """The training rows as floats when they are small enough, else as they are (uint8)."""
    return _floats(x) if x.numel() * 4 <= FLOATS_AT_ONCE else x


def _floats(x: torch.Tensor) -> torch.Tensor:
    """uint8 pixels as floats in [0, 1]; floats as they are."""
    return x.float().div_(255) if x.dtype == torch.uint8 else x


def _mean_face(x: torch.Tensor) -> torch.Tensor:
    scale = 255 if x.dtype == torch.uint8 else 1
    total = sum(c.sum(dim=0, dtype=torch.float64) for c in x.split(CHUNK))
    return (total / (scale * len(x))).float()


def _epoch(model: Autoencoder, opt: FusedAdamW | torch.optim.Optimizer, x: torch.Tensor,
           settings: ModelSettings, gen: torch.Generator) -> float:
    model.train()
    order = torch.randperm(len(x), generator=gen).to(x.device)
    total = torch.zeros((), device=x.device)
    for start in range(0, len(x), settings.batch_size):
        batch = _floats(x[order[start:start + settings.batch_size]])
        inputs = batch
        if settings.noise > 0:  # masking noise: a denoising autoencoder. A masked pixel takes the mean
            keep = torch.rand(batch.shape, generator=gen) >= settings.noise  # face's value: 0 once centred
            inputs = torch.where(keep.to(x.device), batch, model.mean)
        hidden, output = model.reconstruct(inputs)
        loss = torch.nn.functional.mse_loss(output, batch)
        if settings.sparsity > 0:  # L1 on the first layer's activations: fewer units explain each face
            first = hidden if len(model.encoder) == 1 else model.encode(inputs, depth=1)
            loss = loss + settings.sparsity * first.abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.detach() * len(batch)
    return float(total) / len(x)


CHUNK = 4096  # faces turned into floats at a time outside training


@torch.no_grad()
def evaluate(model: Autoencoder, x: torch.Tensor) -> float:
    """Mean squared reconstruction error per pixel of uint8 crops (faces, pixels), dropout off."""
    model.eval()
    total = 0.0
    for chunk in x.split(CHUNK):
        batch = _floats(chunk)
        total += float(torch.nn.functional.mse_loss(model(batch), batch, reduction="sum"))
    return total / x.numel()


@torch.no_grad()
def first_layer(model: Autoencoder, pixels: np.ndarray) -> np.ndarray:
    """Activations of the first hidden layer's units, (N, units), eval mode."""
    model.eval()
    x = torch.from_numpy(pixels.reshape(len(pixels), -1))
    return torch.cat([model.encode(_floats(c), depth=1) for c in x.split(CHUNK)]).numpy()


def preferred_inputs(model: Autoencoder, depth: int, radius: float, steps: int = 60, seed: int = 0) -> np.ndarray:
    """Activation maximisation: for each unit of hidden layer ``depth``, the offset from the mean
    face, of length ``radius``, that drives the unit's input (before its non-linearity) highest;
    (units, pixels).

    Normalised gradient ascent on the sphere, all units at once, from a small
    seeded random start. For the first layer the answer is the unit's weight
    image scaled to the radius, so deeper units' pictures read like weight images.
    """
    model.eval()
    units = model.encoder[depth - 1].out_features
    gen = torch.Generator().manual_seed(seed)
    x = _onto_sphere(torch.randn(units, model.mean.numel(), generator=gen), radius)
    pick = torch.arange(units)
    for _ in range(steps):
        x.requires_grad_(True)
        below = model.encode(x + model.mean, depth=depth - 1)
        drive = model.encoder[depth - 1](below)[pick, pick].sum()
        (grad,) = torch.autograd.grad(drive, x)
        with torch.no_grad():
            x = _onto_sphere(x + 0.25 * radius * grad / grad.norm(dim=1, keepdim=True).clamp_min(1e-12), radius)
    return x.detach().numpy()


def _onto_sphere(x: torch.Tensor, radius: float) -> torch.Tensor:
    return x * (radius / x.norm(dim=1, keepdim=True).clamp_min(1e-12))


def face_radius(model: Autoencoder, pixels: np.ndarray) -> float:
    """The median distance of the faces from the model's mean face: the norm bound for preferred_inputs."""
    x = torch.from_numpy(pixels.reshape(len(pixels), -1))
    return float(torch.cat([(_floats(c) - model.mean).norm(dim=1) for c in x.split(CHUNK)]).median())


def unit_weights(model: Autoencoder) -> np.ndarray:
    """Each first-layer unit's input weights, (units, pixels): its weight image."""
    return model.encoder[0].weight.detach().cpu().numpy()


# ---------------------------------------------------------------- checkpoints


def _save(path: Path, key: str, settings: ModelSettings, trained: Trained) -> None:
    """Write the checkpoint whole or not at all; one that cannot be written costs a retrain next time."""
    cache.write(path, partial(torch.save, checkpoint(key, settings, trained)), "model cache")


def checkpoint(key: str, settings: ModelSettings, trained: Trained) -> dict:
    """What a checkpoint holds: everything from_checkpoint needs to rebuild ``trained``."""
    return {
        "format": CHECKPOINT_FORMAT,
        "key": key,
        "settings": asdict(settings),
        "n_inputs": trained.model.encoder[0].in_features,
        "state_dict": trained.model.state_dict(),
        "train_loss": trained.train_loss,
        "test_loss": trained.test_loss,
        "test_mask": trained.test_mask.tolist(),
        "device": trained.device,
        "versions": {"facetrend": __version__, "torch": str(torch.__version__)},
    }


def _load(key: str, n_inputs: int, path: Path) -> Trained:
    """The checkpoint at ``path``; ValueError when it was made for other inputs or by another version."""
    ck = torch.load(path, map_location="cpu", weights_only=True)
    if ck.get("format") != CHECKPOINT_FORMAT or ck.get("key") != key or ck["n_inputs"] != n_inputs:
        raise ValueError("it was made for other inputs or by another version")
    return from_checkpoint(ck, n_inputs, cached=True)


def from_checkpoint(ck: dict, n_inputs: int, cached: bool) -> Trained:
    """The Trained a checkpoint describes (``cached``: whether it came from the cache)."""
    s = ModelSettings(**{**ck["settings"], "hidden": list(ck["settings"]["hidden"])})
    model = Autoencoder(n_inputs, s.hidden, s.activation, s.dropout, s.tied)
    model.load_state_dict(ck["state_dict"])
    mask = np.asarray(ck["test_mask"], bool)
    return Trained(model.eval(), list(ck["train_loss"]), list(ck["test_loss"]), mask, cached, ck.get("device", "cpu"))
