"""Stage 5, analysis: from a report's faces and its trained model to one typed result, ``Analysis``.

Everything a page shows is computed here: every unit's scores, rank, matches
and caption, the composites, the weight images as pictures, the comparisons
with PCA and NMF, the experiment sweep and what each run changed, the deeper
layers, the trend across years and which look rose or fell, and the counts the
pages quote. render (stage 6) only formats this result: it computes nothing,
trains nothing and reads no photo.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import baselines, collect, describe, experiments, looks, match, plots, rank, trends
from .config import Report
from .describe import Caption
from .faces import Faces
from .looks import CONFIDENT, MIN_FACES
from .match import CLEAR_ACTIVATION
from .rank import INTERPRETABLE, face_scores, interpretable

if TYPE_CHECKING:  # torch is imported only when a report is computed
    from .train import Trained

CONTACT_SHEET_MAX = 400  # faces shown on the contact sheet
CONTACT_THUMB_PX = 32  # their size there: the sheet is an overview, each face is published beside its units
GALLERY = 40  # components shown per method in the comparison with PCA and NMF
SELECTIVE = 0.5  # selectivity above which a unit responds more to faces than to non-faces (chance)
SAME_SHARE = 0.005  # interpretable shares closer than this (half a point) are "the same" between two runs
SAME_LOSS = 0.02  # test losses closer than this (2%) are "about the same" between two runs
A_LITTLE = 0.10  # a difference in test loss below this (10%) is "a little"
STILL_FALLING = 0.001  # the last epoch's test loss at least this much (0.1%) below the one before: still falling

Stage = Callable[[str], AbstractContextManager]


@dataclass(frozen=True)
class Unit:
    """One first-layer unit: its scores, rank, matches and caption."""

    id: int
    rank: int
    face_score: float
    selectivity: float
    moved: float | None  # None when the random start is unknown
    agreement: float
    prevalence: float
    prevalence_photos: int
    prevalence_people: int
    matches: list[str]  # face ids, best first (report.json)
    distinctiveness: float
    diversity: float
    trend_score: float
    group: int  # faces in its composite and caption
    caption: str = ""
    caption_generated: bool = True
    shown: list[dict] = field(default_factory=list)  # {id, photo, person, name} of the matches its page shows
    structured: bool = False  # face score at least INTERPRETABLE


@dataclass(frozen=True)
class LookView:
    """One look as the pages show it: what it is, how common, how sure, and the faces that share it."""

    rank: int  # 1 = the most consistent look of the report
    unit: int  # its best unit
    units: list[int]
    faces: list[str]  # face ids, the most typical first (report.json: all of them)
    shown: list[dict]  # {id, photo, person, name} of the faces its section shows
    prevalence: float
    share_words: str  # "about 1 in 5 faces"
    consistency: float
    beyond_chance: bool
    confidence: float
    background: bool
    featured: bool
    caption: str
    effects: dict[str, dict[str, float]]
    composite: np.ndarray  # (size, size) uint8: the mean of its faces


@dataclass(frozen=True)
class Attribute:
    """A measured attribute of the faces (from alignment), as a distribution a sentence can state."""

    name: str
    measured: int  # faces it was measured on
    share: float  # share of them past the threshold
    sentence: str


@dataclass(frozen=True)
class Layer:
    """A hidden layer past the first: each unit's preferred input, drawn."""

    layer: int
    units: int
    structured: int
    face_score: list[float]
    images: np.ndarray  # (units, size, size) uint8


@dataclass(frozen=True)
class Comparison:
    """PCA or NMF fitted to the same training faces."""

    name: str
    slug: str
    n_components: int
    shown: int  # components drawn in the gallery
    train_error: float
    test_error: float | None
    note: str
    interpretable: int
    verdict: str  # how it rebuilds held-out faces against the autoencoder, as a clause; "" without a test set
    images: np.ndarray  # (shown, size, size) uint8


@dataclass(frozen=True)
class RunView:
    """One run of the experiment sweep, measured against the first (the report's own model)."""

    index: int
    label: str
    changes: dict
    final_test_loss: float | None
    change: float | None  # relative change of the test loss against the report's model
    verdict: str  # what the run did to the test loss and the interpretable share, as a clause
    face_like: int
    units: int
    face_like_share: float
    epochs: int
    gflop: float
    best: bool
    train_loss: list[float]
    test_loss: list[float]
    showcase: np.ndarray  # (k, size, size) uint8: its most face-like units


@dataclass(frozen=True)
class TrendRow:
    id: int
    prevalence: list[float]
    change: float


@dataclass(frozen=True)
class ChangeView:
    """A look whose share changed between the first year and the last, as the trends page shows it."""

    index: int  # 1-based, in the order of report.json's changes
    unit: int
    units: list[int]
    caption: str
    background: bool
    prevalence: list[float]  # per year
    change: float
    p: float
    p_text: str  # "p < 0.001", "p = 0.03"
    significant: bool
    composites: list[np.ndarray]  # per year: the mean of that year's faces that show it (a year with none: grey)
    change_text: str = ""  # "up 12 points", "down 1 point"


@dataclass(frozen=True)
class YearAttribute:
    """A measured attribute per year, with a 95% interval."""

    title: str
    share: float
    low: float
    high: float
    measured: int


@dataclass(frozen=True)
class YearSeries:
    """One attribute alignment measured, year by year, each a share (0-1) with its 95% interval."""

    name: str  # report.json: "tilted", "other_faces", "face_size"
    label: str  # what a share is of, for the chart and the table
    years: list[YearAttribute]


@dataclass(frozen=True)
class TrendView:
    """The trends page: years, what changed between the first and the last (every look tested), each year's
    mean face, and the measured attributes per year."""

    years: list[dict]  # slug, title, faces
    rows: list[TrendRow]
    rose: TrendRow | None  # the featured unit that rose most, when any rose
    fell: TrendRow | None  # the featured unit that fell most, when any fell
    every_unit: dict[str, list[float]]  # report.json: every unit's prevalence per year
    changes: list[dict] = field(default_factory=list)  # report.json: every look, biggest rise first, then falls
    shown: list[ChangeView] = field(default_factory=list)  # the significant changes (or the biggest rise and fall)
    significant: int = 0
    tested: int = 0
    year_means: list[np.ndarray] = field(default_factory=list)  # per year: the mean of its aligned faces (RGB: colour)
    difference: np.ndarray | None = None  # last year's mean minus the first's, mid-grey = no difference
    attributes: list[YearSeries] = field(default_factory=list)  # tilt, other faces, face size: charted per year
    attributes_size: tuple[int, int] = (0, 0)  # the pixels of each attribute's chart
    chart_size: tuple[int, int] = (0, 0)  # the pixels of the chart of the changes shown
    colour: bool = False  # the composites are in colour
    significance: float = trends.SIGNIFICANT


@dataclass(frozen=True)
class Analysis:
    """Everything one report's pages show, computed: render's only input besides the site's settings."""

    report: Report
    photos_total: int
    faces: int
    people: int | None
    detected: int
    excluded: int
    skipped: list[dict]  # path (None with publish_photos: none) and reason
    skipped_counts: list[dict]  # reason (no file named), count: what a public page says of the skipped files
    face_list: list[dict]  # report.json's faces: id, photo, person, name
    profiles: dict[str, dict]  # person -> profile fields (empty with publish_photos: none)
    layers: list[dict]  # the network, input to output
    model: dict  # the model settings
    face_settings: dict
    train_faces: int
    test_faces: int
    train_loss: list[float]
    test_loss: list[float]
    final_train_loss: float
    final_test_loss: float | None
    units: list[Unit]  # by id
    ranked: list[Unit]  # by rank
    featured: list[Unit]  # best first
    featured_structured: int  # featured units with a structured weight image
    featured_selective: int  # featured units with selectivity above chance
    interpretable: int
    nonfaces: str
    captions: dict[int, Caption]
    unit_images: np.ndarray  # (units, size, size) uint8 weight images
    composites: dict[int, np.ndarray]  # unit -> the mean of its group's faces, uint8
    mean_face: np.ndarray  # (size, size) uint8
    contact_sheet: np.ndarray | None  # the first faces, small; None with publish_photos: none
    face_crops: dict[str, np.ndarray]  # face id -> crop, for every face a page shows (none with publish: none)
    photo_thumbnails: dict[str, np.ndarray]  # face id -> its photo, small (publish_photos: full only)
    autoencoder_gallery: np.ndarray | None  # its first-ranked units' images, beside PCA's and NMF's
    comparisons: list[Comparison] = field(default_factory=list)
    deeper: list[Layer] = field(default_factory=list)
    runs: list[RunView] = field(default_factory=list)
    trend: TrendView | None = None
    looks: list[LookView] = field(default_factory=list)  # the looks checked against chance, most consistent first
    featured_looks: list[LookView] = field(default_factory=list)  # best first
    other_looks: list[LookView] = field(default_factory=list)  # the checked looks not featured
    background_looks: list[LookView] = field(default_factory=list)  # bright backdrops, beyond chance
    captioned: list[Unit] = field(default_factory=list)  # units the author captioned
    chance_consistency: float = 0.0  # what faces with no looks reach
    confident: float = CONFIDENT  # confidence a featured look needs
    min_faces: int = MIN_FACES  # fewer faces have no looks
    attributes: list[Attribute] = field(default_factory=list)
    several_people: bool = False  # the faces are of more than one known person
    interpretable_threshold: float = INTERPRETABLE
    clear_activation: float = CLEAR_ACTIVATION
    findings: list[str] = field(default_factory=list)  # the technical notes, as sentences from what was measured

    @property
    def contact_sheet_count(self) -> int:
        return 0 if self.contact_sheet is None else len(self.contact_sheet)

    @property
    def given_crops(self) -> int:
        """Faces that were used as the crops they already were (not found by detection in a larger photo)."""
        return self.faces - self.detected


@dataclass(frozen=True)
class Where:
    """Where the analysis may keep what it fits (PCA/NMF, experiment runs), and whether to ignore it."""

    cache: Path
    retrain: bool = False


def analyse(report: Report, found: Faces, trained: Trained, where: Where, stage: Stage = lambda _: nullcontext(),
            years: trends.Years | None = None) -> tuple[Analysis, dict[str, bool], dict[str, float]]:
    """The report's analysis; also which of its parts came from the cache, and the experiments' seconds."""
    from . import train  # torch: only when a report is computed

    s = report.settings
    with stage("rank"):
        acts = train.first_layer(trained.model, found.pixels)
        weights = train.unit_weights(trained.model)
        group = rank.group_size(len(found.ids))
        best = match.best_faces(acts, max(group, s.matches))  # sorted once, for the groups and the matches
        ranking = _ranking(trained, found, acts, weights, best, group, s)
    with stage("deeper"):
        deeper = _deeper_layers(trained.model, found.pixels, s.model, s.faces.size)
    with stage("match"):
        matches = match.match_units(acts, found, s.matches, best)
        trend = trends.by_year(acts, years) if years is not None else None
    with stage("looks"):
        found_looks = looks.find_looks(found.pixels, acts, lambda px: train.first_layer(trained.model, px), group,
                                       s.model.seed, _layout(found, s.faces.margin))
        chosen = found_looks.featured(s.featured)
        featured = [v.unit for v in chosen] + [u for u in s.captions if u not in {v.unit for v in chosen}]
    with stage("describe"):
        captions = describe.describe(found.pixels, [b[:group] for b in best], group, s.captions)
        captions.update({v.unit: Caption(v.caption, True, {k: e["departure"] for k, e in v.effects.items()})
                         for v in chosen if v.unit not in s.captions})
    cached: dict[str, bool] = {}
    with stage("baselines"):
        fitted = _baselines(found, trained, report, where, cached)
    with stage("experiments"):
        runs, seconds = _experiments(report, found, where, cached)
    with stage("pictures"):
        result = _assemble(report, found, trained, weights, ranking, matches, captions, deeper, fitted, runs, trend,
                           found_looks, featured, years)
    return result, cached, seconds


def _ranking(trained: Trained, found: Faces, acts: np.ndarray, weights: np.ndarray, best: list[list[int]],
             group: int, s) -> rank.Ranking:
    from . import train

    nonfaces, nonface_source = rank.nonfaces(found.backgrounds, s.faces)
    signals = rank.Signals(found.pixels, found.persons, [b[:group] for b in best], acts,
                           train.first_layer(trained.model, nonfaces), nonface_source,
                           train.initial_weights(weights.shape[1], s.model))
    return rank.rank_units(weights, s.faces.size, signals, s.featured, list(s.captions))


def _deeper_layers(model, pixels: np.ndarray, settings, size: int) -> list[Layer]:
    """What each unit of the hidden layers past the first looks for (activation maximisation)."""
    from . import train

    layers = len(settings.hidden)
    if layers < 2:
        return []
    radius = train.face_radius(model, pixels)
    out = []
    for depth in range(2, layers + 1):
        preferred = train.preferred_inputs(model, depth, radius, seed=settings.seed)
        scores = face_scores(preferred, size)
        out.append(Layer(depth, len(preferred), interpretable(scores), [_round(v) for v in scores],
                         plots.weight_images(preferred, size)))
    return out


def _baselines(found: Faces, trained: Trained, report: Report, where: Where,
               cached: dict[str, bool]) -> list[baselines.Baseline]:
    """PCA and NMF on the model's own training faces, as many components as it has first-layer units."""
    s = report.settings
    if not s.baselines:
        return []
    fitted, cached["baselines"] = baselines.fit_or_load(
        found.pixels, trained.test_mask, s.model.hidden[0], s.model.seed, where.cache, where.retrain)
    return fitted


def _experiments(report: Report, found: Faces, where: Where,
                 cached: dict[str, bool]) -> tuple[list[experiments.RunResult], dict[str, float]]:
    """The report's experiment sweep, when it asks for one; each run's seconds (for the build record only)."""
    e, s = report.settings.experiments, report.settings
    if not e.enabled:
        return [], {}
    sweep = experiments.sweep_from_overrides(s.model, e.runs) if e.runs else experiments.default_sweep(s.model)
    results = experiments.run_sweep(found, sweep, s.faces.size, where.cache, where.retrain)
    cached["experiments"] = all(r.cached for r in results)
    return results, {f"experiment: {r.label}": round(r.seconds, 4) for r in results}


# ---------------------------------------------------------------- the result


def _assemble(report: Report, found: Faces, trained: Trained, weights: np.ndarray, ranking: rank.Ranking,
              matches: match.Matches, captions: dict[int, Caption], deeper: list[Layer],
              fitted: list[baselines.Baseline], runs: list[experiments.RunResult],
              trend: trends.Trend | None, found_looks: looks.Looks, featured_ids: list[int],
              years: trends.Years | None = None) -> Analysis:
    s = report.settings
    size, publish = s.faces.size, s.publish_photos
    units = _units(found, ranking, matches, captions, s.matches, publish)
    featured = [units[u] for u in featured_ids]
    views = _looks(found, found_looks, s.matches, s.featured, publish)
    final_test = trained.kept_test_loss(s.model.early_stopping)
    unit_images = plots.weight_images(weights, size)
    shown = [] if publish == "none" else sorted(
        {i for best in matches.best for i in best[:s.matches]}
        | {i for v in found_looks.looks[:looks.CHECKED] for i in v.faces[:s.matches]})
    first = np.argsort(ranking.rank, kind="stable")[:GALLERY]
    return Analysis(
        report=report, photos_total=found.total, faces=len(found.ids), people=found.people,
        detected=sum(found.detected), excluded=found.excluded,
        skipped=[{"path": None if publish == "none" else k.path, "reason": k.reason} for k in found.skipped],
        skipped_counts=skip_counts([k.reason for k in found.skipped]),
        face_list=_face_list(found, publish),
        profiles={} if publish == "none" else {p: found.profiles.get(p, {}) for p in
                                               sorted({p for p in found.persons if p is not None})},
        layers=_layers(s, found.pixels[0].size), model=asdict(s.model), face_settings=asdict(s.faces),
        train_faces=int((~trained.test_mask).sum()), test_faces=int(trained.test_mask.sum()),
        train_loss=[_round(v) for v in trained.train_loss], test_loss=[_round(v) for v in trained.test_loss],
        final_train_loss=_round(trained.train_loss[-1]), final_test_loss=_maybe(final_test),
        units=units, ranked=sorted(units, key=lambda v: v.rank), featured=featured,
        featured_structured=sum(u.structured for u in featured),
        featured_selective=sum(u.selectivity > SELECTIVE for u in featured),
        interpretable=interpretable(ranking.face_score), nonfaces=ranking.nonfaces, captions=captions,
        unit_images=unit_images,
        composites={u: _mean(found.pixels[g]) for u, g in enumerate(ranking.groups) if g},
        mean_face=_mean(found.pixels),
        contact_sheet=None if publish == "none" else plots.thumbnails(found.pixels[:CONTACT_SHEET_MAX],
                                                                      CONTACT_THUMB_PX),
        face_crops={found.ids[i]: found.pixels[i] for i in shown},
        photo_thumbnails=_thumbnails(found, shown) if publish == "full" else {},
        autoencoder_gallery=unit_images[first] if fitted else None,
        comparisons=[_comparison(b, final_test, size) for b in fitted], deeper=deeper,
        runs=_runs(runs, size), trend=_trend(trend, featured_ids, found, found_looks, years),
        several_people=(found.people or 0) > 1,
        looks=views, featured_looks=[v for v in views if v.featured], other_looks=[v for v in views if not v.featured],
        background_looks=[v for v in views if v.background and v.beyond_chance],
        captioned=[units[u] for u in sorted(s.captions)],
        chance_consistency=found_looks.chance, attributes=_attributes(found),
        findings=findings(trained.train_loss, trained.test_loss, final_test, fitted, runs),
    )


def skip_counts(reasons: list[str]) -> list[dict]:
    """How many files were skipped for each kind of reason, most first; no reason names a file (a duplicate's
    twin, a path in an error message), so a public page can say these."""
    counts: dict[str, int] = {}
    for reason in reasons:
        kind = skip_kind(reason)
        counts[kind] = counts.get(kind, 0) + 1
    return [{"reason": k, "count": n} for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def skip_kind(reason: str) -> str:
    """A skip reason without what names a file: "duplicate of a/b.jpg" -> "duplicate of another photo",
    "could not be read (No such file: x)" -> "could not be read"."""
    for prefix in ("near-duplicate of ", "duplicate of "):
        if reason.startswith(prefix):
            return prefix + "another photo"
    if reason.startswith("could not be read"):
        return "could not be read"
    return reason.split(";")[0].strip()


def findings(train_loss: list[float], test_loss: list[float], final_test: float | None,
             fitted: list[baselines.Baseline], runs: list[experiments.RunResult]) -> list[str]:
    """The technical notes as findings, from what was measured: whether the test loss was still falling when
    training stopped, how PCA rebuilds the held-out faces against the autoencoder, and what each run of the
    experiment sweep showed (one line each)."""
    out = []
    losses = test_loss or train_loss
    which = "test loss" if test_loss else "training loss (no faces were held out)"
    if len(losses) >= 2:
        last, before = losses[-1], losses[-2]
        if last < before * (1 - STILL_FALLING):
            out.append(f"The {which} was still falling at epoch {len(losses)}, the last: more epochs would "
                       "probably rebuild faces better.")
        elif test_loss and min(test_loss) < last * (1 - STILL_FALLING):
            best = int(np.argmin(test_loss)) + 1
            out.append(f"The test loss was lowest at epoch {best} of {len(test_loss)} and rose after it: the model "
                       "began to learn its training faces rather than faces in general.")
        else:
            out.append(f"The {which} had levelled off by the last epoch ({len(losses)}).")
    pca = next((b for b in fitted if b.name == "PCA"), None)
    if pca is not None and pca.test_error is not None and final_test:
        if pca.test_error < final_test:
            out.append(f"PCA with as many components rebuilt the held-out faces better than the autoencoder "
                       f"(error {(1 - pca.test_error / final_test) * 100:.0f}% lower): as a way to compress faces "
                       "the autoencoder adds nothing here; what it offers is its units, pictures of what faces "
                       "share, not a better copy of them.")
        else:
            out.append(f"The autoencoder rebuilt the held-out faces better than PCA with as many components "
                       f"(error {(1 - final_test / pca.test_error) * 100:.0f}% lower).")
    return out + sweep_findings(runs)


def sweep_findings(results: list[experiments.RunResult]) -> list[str]:
    """One line per factor the sweep varied: "ReLU beat sigmoid", "about 400 units worked best"."""
    if len(results) < 2 or results[0].final_test is None:
        return []
    base = results[0]
    base_settings = asdict(base.settings)
    out, sizes = [], {base.settings.hidden[0]: base.final_test}
    for r in results[1:]:
        if r.final_test is None:
            continue
        changed = {k: v for k, v in asdict(r.settings).items() if v != base_settings[k]}
        if set(changed) == {"hidden"} and changed["hidden"][1:] == base.settings.hidden[1:]:
            sizes[changed["hidden"][0]] = r.final_test
            continue
        line = _factor_finding(changed, base_settings, base.final_test, r.final_test, r.label)
        if r.face_like == 0 and base.face_like > 0:
            line += "; it left no unit interpretable"
        out.append(line + ".")
    if len(sizes) > 1:
        best = min(sizes, key=lambda k: (sizes[k], k))
        tried = ", ".join(str(k) for k in sorted(sizes))
        out.insert(0, f"About {best} units worked best (of {tried} tried, by test loss).")
    return out


def _factor_finding(changed: dict, base: dict, ours: float, theirs: float, label: str) -> str:
    """One run's finding in words: which setting won, and by how much (``ours``: the report model's test loss,
    ``theirs``: the run's)."""
    gap = 1 - min(ours, theirs) / max(ours, theirs)  # how much lower the better one's test loss is
    by = f"{gap * 100:.0f}%"
    degree = "a little" if gap < A_LITTLE else "clearly"
    if set(changed) == {"activation"}:
        mine, other = _act(base["activation"]), _act(changed["activation"])
        if gap < SAME_LOSS:
            return f"{mine} and {other} did about as well (test losses within {SAME_LOSS * 100:.0f}%)"
        winner, loser = (mine, other) if ours < theirs else (other, mine)
        return f"{winner} beat {loser} (test loss {by} lower)"
    if set(changed) in ({"dropout"}, {"noise"}):
        key = next(iter(changed))
        what = "Dropout" if key == "dropout" else "Masking noise (denoising)"
        added = changed[key] > base[key]  # the run adds it (the report's model has none) or removes it
        with_it, without = (theirs, ours) if added else (ours, theirs)
        if gap < SAME_LOSS:
            return f"{what} made little difference (test losses within {SAME_LOSS * 100:.0f}%)"
        verb = ("helped" if with_it < without else "hurt")
        verb = f"{verb} a little" if degree == "a little" else f"clearly {verb}"
        return f"{what} {verb} (test loss {by} lower {'with' if with_it < without else 'without'} it)"
    if gap < SAME_LOSS:
        return f"{label[:1].upper()}{label[1:]}: about the same test loss as the report's model"
    if theirs < ours:
        return f"{label[:1].upper()}{label[1:]} did better than the report's model (test loss {by} lower)"
    return f"The report's model did better than {label} (test loss {by} lower)"


def _act(name: str) -> str:
    return {"relu": "ReLU", "sigmoid": "sigmoid", "tanh": "tanh"}.get(name, name)


def _looks(found: Faces, found_looks: looks.Looks, shown: int, featured: int, publish: str) -> list[LookView]:
    """The looks that were checked against chance (the first looks.CHECKED), as the pages show them."""
    chosen = {id(v) for v in found_looks.featured(featured)}
    out = []
    for k, v in enumerate(found_looks.looks[:looks.CHECKED]):
        out.append(LookView(
            rank=k + 1, unit=v.unit, units=v.units, faces=[found.ids[i] for i in v.faces],
            shown=[] if publish == "none" else [_face(found, i) for i in v.faces[:shown]],
            prevalence=v.prevalence, share_words=looks.share_words(v.prevalence), consistency=v.consistency,
            beyond_chance=v.beyond_chance, confidence=v.confidence, background=v.background,
            featured=id(v) in chosen, caption=v.caption, effects=v.effects,
            composite=_mean(found.pixels[v.faces])))
    return out


TILTED = 10.0  # degrees of head roll from which a head counts as tilted


def _attributes(found: Faces) -> list[Attribute]:
    """What alignment measured, per report: how many heads were tilted, and to which side."""
    tilts = np.array([t for t in found.tilt if t is not None], float) if found.tilt else np.array([])
    if not len(tilts):
        return []
    tilted = np.abs(tilts) > TILTED
    share = float(tilted.mean())
    left = int((tilts[tilted] > 0).sum())
    side = "" if not tilted.any() else (" (most to the left)" if left * 2 > tilted.sum() else
                                        " (most to the right)" if left * 2 < tilted.sum() else " (as many each way)")
    sentence = (f"Heads tilted more than {TILTED:.0f} degrees: {share * 100:.0f}% of the {len(tilts)} faces measured"
                f"{side}.")
    return [Attribute("tilt", len(tilts), _round(share, 4), sentence)]


def _units(found: Faces, ranking: rank.Ranking, matches: match.Matches, captions: dict[int, Caption],
           shown: int, publish: str) -> list[Unit]:
    r, m = ranking, matches
    units = []
    for u in range(len(r.rank)):
        caption = captions.get(u)
        best = m.best[u]
        units.append(Unit(
            id=u, rank=int(r.rank[u]), face_score=_round(r.face_score[u]), selectivity=_round(r.selectivity[u]),
            moved=None if np.isnan(r.moved[u]) else _round(r.moved[u]), agreement=_round(r.agreement[u]),
            prevalence=_round(m.prevalence[u]), prevalence_photos=int(m.photos[u]),
            prevalence_people=int(m.people[u]), matches=[found.ids[i] for i in best],
            distinctiveness=_round(r.distinctiveness[u]), diversity=_round(r.diversity[u]),
            trend_score=_round(r.trend_score[u]), group=len(r.groups[u]),
            caption=caption.text if caption else "", caption_generated=caption.generated if caption else True,
            shown=[_face(found, i) for i in best[:shown]],  # the template shows none with publish_photos: none
            structured=bool(r.face_score[u] >= INTERPRETABLE),
        ))
    return units


def _face(found: Faces, i: int) -> dict:
    person = found.persons[i]
    name = found.profiles.get(person, {}).get("name") if person is not None else None
    return {"id": found.ids[i], "photo": found.photos[i], "person": person,
            "name": name or (collect.person_name(person) if person is not None else None)}


def _face_list(found: Faces, publish: str) -> list[dict]:
    """Every face with what alignment removed (tilt in degrees, size in the photo, the detector's box) and how
    many other faces its photo held; with publish_photos: none, no photo paths, names or boxes."""
    out = []
    for i in range(len(found.ids)):
        face = {"id": found.ids[i], "photo": None, "person": None} if publish == "none" else _face(found, i)
        face.update(tilt=_pose(found.tilt, i), face_size=_pose(found.face_size, i),
                    other_faces=int(found.other_faces[i]) if len(found.other_faces) == len(found.ids) else 0)
        if publish != "none":
            box = _pose(found.box, i)
            face["box"] = None if box is None else [int(v) for v in box]
        out.append(face)
    return out


def _pose(values: list, i: int):
    """One face's entry of a per-face list the faces stage may leave empty (crops cached before alignment)."""
    value = values[i] if len(values) > i else None
    return None if value is None else value if isinstance(value, tuple | list) else float(value)


def _layers(s, n_in: int) -> list[dict]:
    layers = [{"name": "input", "size": n_in, "what": f"{s.faces.size}x{s.faces.size} grey pixels"}]
    layers += [{"name": f"hidden {i + 1}", "size": h, "what": f"{s.model.activation} units"}
               for i, h in enumerate(s.model.hidden)]
    return layers + [{"name": "output", "size": n_in, "what": "reconstructed pixels (linear)"}]


def _thumbnails(found: Faces, shown: list[int]) -> dict[str, np.ndarray]:
    """publish_photos: full: the photo behind each shown face, as the faces stage kept it."""
    kept = found.thumbnails
    return {found.ids[i]: kept[found.ids[i]] for i in shown if found.ids[i] in kept}


def _comparison(b: baselines.Baseline, final_test: float | None, size: int) -> Comparison:
    shown = min(GALLERY, b.n_components)
    draw = plots.part_images if b.components.min() >= 0 else plots.weight_images  # NMF parts are never negative
    return Comparison(
        name=b.name, slug=b.name.lower(), n_components=b.n_components, shown=shown,
        train_error=_round(b.train_error), test_error=_maybe(b.test_error), note=b.note,
        interpretable=interpretable(face_scores(b.components, size)), verdict=_verdict(b.test_error, final_test),
        images=draw(b.components[:GALLERY], size))


def _verdict(error: float | None, autoencoder: float | None) -> str:
    """How a baseline rebuilds the held-out faces, against the autoencoder."""
    if error is None or not autoencoder:
        return ""
    if error < autoencoder:
        return f"better than the autoencoder (error {(1 - error / autoencoder) * 100:.0f}% lower)"
    return f"less well than the autoencoder (error {(error / autoencoder - 1) * 100:.0f}% higher)"


def _runs(results: list[experiments.RunResult], size: int) -> list[RunView]:
    """Each run of the sweep, measured against the first (the report's own model)."""
    if not results:
        return []
    base = results[0]
    base_settings = asdict(base.settings)
    finals = [r.final_test for r in results if r.final_test is not None]
    views = []
    for i, r in enumerate(results):
        change = None if r.final_test is None or not base.final_test else r.final_test / base.final_test - 1
        views.append(RunView(
            index=i, label=r.label, changes={k: v for k, v in asdict(r.settings).items() if v != base_settings[k]},
            final_test_loss=_maybe(r.final_test), change=_maybe(change, 4),
            verdict=_run_verdict(change, r.face_like_share, base.face_like_share),
            face_like=r.face_like, units=r.units, face_like_share=_round(r.face_like_share, 4),
            epochs=r.epochs_run, gflop=round(r.gflop, 1), best=bool(finals) and r.final_test == min(finals),
            train_loss=[_round(v) for v in r.train_loss], test_loss=[_round(v) for v in r.test_loss],
            showcase=plots.weight_images(r.showcase, size)))
    return views


def _run_verdict(change: float | None, share: float, base_share: float) -> str:
    loss = ("no test loss (no held-out faces)" if change is None else
            f"test loss {abs(change) * 100:.0f}% {'lower' if change < 0 else 'higher'} than the report model's")
    more = " (more)" if share > base_share + SAME_SHARE else " (fewer)" if share < base_share - SAME_SHARE else ""
    return f"{loss}; {share * 100:.0f}% of its units interpretable against {base_share * 100:.0f}%{more}"


def _trend(t: trends.Trend | None, featured: list[int], found: Faces, found_looks: looks.Looks,
           years: trends.Years | None) -> TrendView | None:
    """Years; every look's change from the first year to the last, tested; the featured units' prevalence per
    year; each year's mean face and what alignment measured per year."""
    if t is None or years is None:
        return None
    rows = [TrendRow(u, [_round(v) for v in t.prevalence[u]], _round(t.change[u])) for u in featured]
    by_change = sorted(rows, key=lambda r: (r.change, r.id))
    year_list = [{"slug": s, "title": n, "faces": c} for s, n, c in zip(t.years.slugs, t.years.titles, t.faces,
                                                                        strict=True)]
    tested = trends.changes(found_looks, years)
    doc = [{"unit": found_looks.looks[c.look].unit, "units": found_looks.looks[c.look].units,
            "caption": found_looks.looks[c.look].caption, "background": found_looks.looks[c.look].background,
            "faces": [found.ids[i] for i in found_looks.looks[c.look].faces],
            "prevalence": c.prevalence, "change": c.change, "p": c.p, "significant": c.significant} for c in tested]
    picked = [k for k, c in enumerate(tested) if c.significant]
    if not picked:  # the biggest rise and the biggest fall, shown as not significant
        picked = [k for k in ([0] if tested and tested[0].change > 0 else []) +
                  ([next((k for k, c in enumerate(tested) if c.change < 0), -1)]) if k >= 0]
    shown = [_change_view(k, tested[k], found_looks.looks[tested[k].look], found, years) for k in picked]
    seen, attributes = _seen(found), _attributes_by_year(found, years)
    means = [_mean(seen[years.of_face == k]) for k in range(len(years.slugs))]
    difference = np.clip(128 + 4 * (means[-1].astype(np.int16) - means[0].astype(np.int16)), 0, 255).astype(np.uint8)
    return TrendView(year_list, rows, rose=by_change[-1] if rows and by_change[-1].change > 0 else None,
                     fell=by_change[0] if rows and by_change[0].change < 0 else None,
                     every_unit={str(u): [_round(v) for v in t.prevalence[u]] for u in range(len(t.change))},
                     changes=doc, shown=shown, significant=sum(c.significant for c in tested), tested=len(tested),
                     year_means=means, difference=difference,
                     attributes=attributes, attributes_size=plots.ATTRIBUTE_PLOT_SIZE,
                     chart_size=plots.trend_plot_size(len(shown)),
                     colour=found.colour is not None)


def _change_view(k: int, c: trends.Change, look: looks.Look, found: Faces, years: trends.Years) -> ChangeView:
    composites, seen = [], _seen(found)
    for y in range(len(years.slugs)):
        members = look.members & (years.of_face == y)
        composites.append(_mean(seen[members]) if members.any() else np.full(seen.shape[1:], 128, np.uint8))
    p_text = "p < 0.001" if c.p < 0.001 else f"p = {c.p:.2g}"
    return ChangeView(k + 1, look.unit, look.units, look.caption, look.background, c.prevalence, c.change, c.p,
                      p_text, c.significant, composites, points_text(c.change))


def _layout(found: Faces, margin: float) -> dict | None:
    """Where the parts of these crops are: the landmark template's layout when most faces were aligned on it,
    else (crops used whole) looks.REGIONS."""
    aligned = sum(t is not None for t in found.tilt)
    return looks.aligned_regions(margin) if aligned * 2 > len(found.ids) else None


def _seen(found: Faces) -> np.ndarray:
    """The faces as a reader sees them: in colour when the photos were (a composite shows hair colour and
    make-up), else the grey crops the network learnt from."""
    return found.pixels if found.colour is None else found.colour


def points_text(change: float) -> str:
    """A change of share in words: 0.12 -> "up 12 points", -0.01 -> "down 1 point", 0.001 -> "no change"."""
    points = abs(round(change * 100))
    if points == 0:
        return "no change (under half a point)"
    return f"{'up' if change > 0 else 'down'} {points} {'point' if points == 1 else 'points'}"


def _attributes_by_year(found: Faces, years: trends.Years) -> list[YearSeries]:
    """What alignment measured, per year, each with a 95% interval: heads tilted more than TILTED degrees
    (Wilson), detected faces whose photo held other faces (Wilson), and the mean face size relative to the
    photo's shorter side (mean +- 1.96 standard errors). A series nobody measured is left out."""
    tilted = [None if t is None else abs(t) > TILTED for t in found.tilt] if len(found.tilt) == len(found.ids) else []
    crowded = [n > 0 if d else None for n, d in zip(found.other_faces, found.detected, strict=True)] \
        if len(found.other_faces) == len(found.ids) else []
    series = [YearSeries("tilted", f"heads tilted more than {TILTED:.0f}°", _shares(tilted, years)),
              YearSeries("other_faces", "detected faces with other faces in their photo", _shares(crowded, years)),
              YearSeries("face_size", "face size, share of the photo's shorter side",
                         _means(found.face_size if len(found.face_size) == len(found.ids) else [], years))]
    return [s for s in series if s.years]


def _shares(flags: list[bool | None], years: trends.Years) -> list[YearAttribute]:
    """Per year, the share of True among the faces measured (None: not measured), with a Wilson interval;
    nothing when a year has no measured face."""
    out = []
    for k, title in enumerate(years.titles):
        seen = [f for f, y in zip(flags, years.of_face, strict=False) if y == k and f is not None]
        if not seen:
            return []
        share = sum(seen) / len(seen)
        low, high = _wilson(share, len(seen))
        out.append(YearAttribute(title, _round(share, 4), _round(low, 4), _round(high, 4), len(seen)))
    return out


def _means(values: list[float | None], years: trends.Years) -> list[YearAttribute]:
    """Per year, the mean of the values measured, +- 1.96 standard errors; nothing when a year has fewer
    than two."""
    out = []
    for k, title in enumerate(years.titles):
        seen = np.array([v for v, y in zip(values, years.of_face, strict=False) if y == k and v is not None], float)
        if len(seen) < 2:
            return []
        mean, half = float(seen.mean()), 1.96 * float(seen.std(ddof=1)) / np.sqrt(len(seen))
        out.append(YearAttribute(title, _round(mean, 4), _round(max(0.0, mean - half), 4),
                                 _round(mean + half, 4), len(seen)))
    return out


def _wilson(share: float, n: int, z: float = 1.96) -> tuple[float, float]:
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _mean(pixels: np.ndarray) -> np.ndarray:
    """The composite of some faces: their mean, pixel by pixel."""
    return np.round(pixels.mean(axis=0, dtype=np.float64)).astype(np.uint8)


def _maybe(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else _round(value, digits)


def _round(value: float, digits: int = 6) -> float:
    return round(float(value), digits)


def method_numbers() -> dict:
    """The constants the method page quotes, from the code that uses them."""
    from .config import FaceSettings

    return {"noise_ratio": rank.NOISE_LAPLACIAN_RATIO, "interpretable": INTERPRETABLE, "top": rank.TREND_TOP,
            "small_report": rank.TREND_TOP * 4,  # below this many faces a unit's group is a quarter of them
            "min_backgrounds": rank.MIN_BACKGROUNDS, "same_look": rank.SAME_LOOK, "clear_activation": CLEAR_ACTIVATION,
            "regions": describe.REGIONS,
            "crop_max_side": FaceSettings().crop_max_side,
            "look_region": looks.REGION, "sd_floor": looks.SD_FLOOR, "refine_steps": looks.REFINE_STEPS,
            "same_faces": looks.SAME_FACES, "same_look_looks": looks.SAME_LOOK, "side_band": looks.SIDE_BAND,
            "background_share": looks.BACKGROUND_SHARE, "null_draws": looks.NULL_DRAWS,
            "chance_one_in": looks.NULL_DRAWS + 1,
            "splits": looks.SPLITS,
            "half_units": looks.HALF_UNITS, "agree": looks.AGREE, "confident": looks.CONFIDENT, "named": looks.NAMED,
            "said": looks.SAID, "mixed": looks.MIXED, "look_regions": looks.REGIONS,
            "aligned_regions": looks.aligned_regions(FaceSettings().margin), "margin": FaceSettings().margin,
            "significant": trends.SIGNIFICANT}
