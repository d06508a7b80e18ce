"""build(): the table of contents of a build. Each line is one stage; only render writes site/."""

from __future__ import annotations

import json
import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from . import (
    baselines,
    collect,
    config,
    describe,
    experiments,
    faces,
    feeds,
    incremental,
    match,
    rank,
    render,
    trends,
)
from .errors import UserError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildOptions:
    """Where to read and write, and the command-line overrides."""

    content: Path = Path("content")
    out: Path = Path("site")
    cache: Path = Path(".facetrend-cache")
    report: str | None = None  # build only this report; the others' pages are kept
    retrain: bool = False  # ignore cached models (and rebuild every page)
    smoke: bool = False  # at most 2 epochs: the real path, fast (tests, previews)
    jobs: int = 0  # processes for cropping faces; 0: one per core
    base_url: str | None = None  # overrides site.toml's base_url (e.g. from the Pages workflow)


@dataclass
class BuildResult:
    reports: list[dict]  # the report.json documents computed in this build
    record: dict  # <cache>/last-build.json
    out: Path = field(default=Path("site"))
    written: bool = True  # False when nothing changed and the site was left as it was


class _Clock:
    """Seconds per stage, and which stages were served from the cache."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self.cached: dict[str, bool] = {}

    @contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        yield
        self.timings[name] = round(self.timings.get(name, 0.0) + time.perf_counter() - start, 4)


def build(options: BuildOptions) -> BuildResult:
    """Build the site, holding the output folder's lock so two builds never interleave."""
    with exclusive(options.out):
        return _build(options)


@contextmanager
def exclusive(out: Path):
    """An exclusive lock on the output folder (a hidden file beside it); a second build stops with a message."""
    try:
        import fcntl
    except ImportError:  # not on this platform: no lock
        yield
        return
    out.resolve().parent.mkdir(parents=True, exist_ok=True)
    path = out.resolve().parent / f".{out.resolve().name}.lock"
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"another facetrend build is writing {out} right now. Fix: wait for it to finish, "
                            "then build again.") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(options: BuildOptions) -> BuildResult:
    """Each changed report's stages, the trends, the index and feeds, one atomic write."""
    site = config.apply_site_overrides(config.load_site(options.content), options.base_url)
    every = [config.apply_overrides(r, options.smoke) for r in config.find_reports(options.content, site)]
    chosen = {r.slug for r in config.find_reports(options.content, site, options.report)}
    if options.report is None:
        chosen.add(config.TRENDS_SLUG)
    render.check_output(options.out, [options.content, options.cache, Path.cwd()])
    navs = navigation(every)
    code = incremental.code_stamp(render.TEMPLATES)
    previous = {} if options.retrain else incremental.load(options.cache, options.out)
    pages = [(r, navs[r.slug]) for r in every]
    if len(every) > 1:
        pages.append((config.apply_overrides(config.trends_report(options.content, site, every), options.smoke),
                      navs[config.TRENDS_SLUG]))
    files, docs, record, stamps, carried, pictures = {}, [], {}, {}, {}, []
    for report, nav in pages:
        stamp = "" if report.slug not in chosen else _stamp(code, site, report, nav, every)
        kept = _kept(options.out / report.slug, stamp, previous.get(report.slug))
        if kept is not None:
            carried[report.slug], stamps[report.slug] = kept, previous.get(report.slug, "")
            continue
        clock = _Clock()
        data = compute_trends(report, every, options, clock) if report.slug == config.TRENDS_SLUG \
            else compute_report(report, options, clock)
        with clock.stage("render"):
            zipped = None if options.retrain else options.cache / "images" / f"{report.slug}.zip"
            pictures.append(pictures.EncodedImages(zipped))
            report_files, doc = render.render_report(data, site, nav, pictures[-1])
        files.update(report_files)
        docs.append(doc)
        record[report.slug] = {"timings": clock.timings, "cached": clock.cached}
        stamps[report.slug] = stamp
    summaries = [d for d in docs + list(carried.values()) if d["slug"] != config.TRENDS_SLUG]
    files.update(render.render_index(site, summaries, trends=len(every) > 1))
    files.update(_feeds(site, summaries, files, carried))
    written = bool(docs) or not render.unchanged(files, options.out, sorted(carried))
    if written:
        render.write_site(files, options.out, sorted(carried))
        incremental.save(options.cache, options.out, stamps)
        for encoded in pictures:  # kept for the next build only once this one is written
            encoded.save()
    else:
        log.info("nothing changed: %s left as it was", options.out)
    last = {"reports": record}
    _write_record(options.cache, last)
    return BuildResult(docs, last, options.out, written)


def crop_faces(report: config.Report, settings: config.FaceSettings, options: BuildOptions,
               clock: _Clock) -> faces.Faces:
    """Stages 2-3: the report's photos, and a face from each."""
    with clock.stage("collect"):
        photos = collect.collect(report)
    with clock.stage("faces"):
        return faces.find_faces(photos, settings, options.cache, str(report.source), options.jobs,
                                frozenset(report.settings.exclude), report.folder)


def compute_report(report: config.Report, options: BuildOptions, clock: _Clock) -> render.ReportData:
    """Stages 2-7 for one report: everything its page shows, computed, nothing written to site/."""
    return analyse(report, crop_faces(report, report.settings.faces, options, clock), options, clock)


def compute_trends(report: config.Report, every: list[config.Report], options: BuildOptions,
                   clock: _Clock) -> render.ReportData:
    """The trends page: every report's faces (cropped with the trends settings), one model, per-year counts."""
    parts = [(r, crop_faces(r, report.settings.faces, options, clock)) for r in _by_date(every)]
    found, years = trends.combine(parts)
    return analyse(report, found, options, clock, years)


def analyse(report: config.Report, found: faces.Faces, options: BuildOptions, clock: _Clock,
            years: trends.Years | None = None) -> render.ReportData:
    """Stages 4-7 on a report's faces."""
    from . import train  # torch: only when a report is computed

    s = report.settings
    with clock.stage("model"):
        trained = train.train_or_load(found, s.model, options.cache, options.retrain)
    with clock.stage("rank"):
        acts = train.first_layer(trained.model, found.pixels)
        nonfaces, nonface_source = rank.nonfaces(found.backgrounds, s.faces)
        weights = train.unit_weights(trained.model)
        group = rank.group_size(len(found.ids))
        best = match.best_faces(acts, max(group, s.matches))  # sorted once, for the groups and the matches
        groups = [b[:group] for b in best]
        signals = rank.Signals(found.pixels, found.persons, groups, acts, train.first_layer(trained.model, nonfaces),
                               nonface_source, train.initial_weights(weights.shape[1], s.model))
        ranking = rank.rank_units(weights, s.faces.size, signals, s.featured, list(s.captions))
        deeper = _deeper_layers(trained.model, found.pixels, len(s.model.hidden), s.model.seed)
    with clock.stage("match"):
        matches = match.match_units(acts, found, s.matches, best)
        trend = trends.by_year(acts, years) if years is not None else None
    with clock.stage("describe"):
        captions = describe.describe(found.pixels, groups, ranking.featured, group, s.captions)
    with clock.stage("baselines"):
        compared = _baselines(found, trained, s, options, clock)
    with clock.stage("experiments"):
        runs = run_experiments(report, found, options, clock)
    clock.cached.update(faces=found.cached, model=trained.cached)
    return render.ReportData(report, found, trained, weights, ranking, matches, captions, trend, deeper, runs,
                             compared)


def _baselines(found: faces.Faces, trained, s: config.ReportSettings, options: BuildOptions,
               clock: _Clock) -> list:
    """PCA and NMF on the model's own training faces, as many components as it has first-layer units."""
    if not s.baselines:
        return []
    fitted, clock.cached["baselines"] = baselines.fit_or_load(
        found.pixels, trained.test_mask, s.model.hidden[0], s.model.seed, options.cache, options.retrain)
    return fitted


def run_experiments(report: config.Report, found: faces.Faces, options: BuildOptions, clock: _Clock) -> list:
    """The report's experiment sweep, when it asks for one; each run's seconds go to the build record."""
    e, s = report.settings.experiments, report.settings
    if not e.enabled:
        return []
    sweep = experiments.sweep_from_overrides(s.model, e.runs) if e.runs else experiments.default_sweep(s.model)
    results = experiments.run_sweep(found, sweep, s.faces.size, options.cache, options.retrain)
    clock.timings.update({f"experiment: {r.label}": round(r.seconds, 4) for r in results})
    clock.cached["experiments"] = all(r.cached for r in results)
    return results


def _deeper_layers(model, pixels, layers: int, seed: int) -> list:
    """What each unit of the hidden layers past the first looks for (activation maximisation)."""
    from . import train

    radius = train.face_radius(model, pixels) if layers > 1 else 0.0
    return [train.preferred_inputs(model, depth, radius, seed=seed) for depth in range(2, layers + 1)]


def navigation(reports: list[config.Report]) -> dict[str, render.Nav]:
    """Each report's links to the one before and after it (by date, then folder name), and the trends'."""
    order = _by_date(reports)
    links = [render.Link(f"{r.slug}/index.html", r.settings.title) for r in order]
    trends_on = len(order) > 1
    navs = {r.slug: render.Nav(links[i - 1] if i > 0 else None, links[i + 1] if i + 1 < len(links) else None,
                               trends_on) for i, r in enumerate(order)}
    navs[config.TRENDS_SLUG] = render.Nav(links[-1] if links else None, None, trends_on)
    return navs


def _by_date(reports: list[config.Report]) -> list[config.Report]:
    return sorted(reports, key=lambda r: (r.settings.date, r.slug))


def _stamp(code: str, site: config.SiteSettings, report: config.Report, nav: render.Nav,
           every: list[config.Report]) -> str:
    """Everything this report's pages depend on (the trends page: every report's photos)."""
    sources = every if report.slug == config.TRENDS_SLUG else [report]
    parts = [site, report.settings, report.narrative, nav, [r.slug for r in sources]]
    photos = [collect.collect(r) for r in sources]
    merged = collect.Collection([p for c in photos for p in c.photos], [s for c in photos for s in c.skipped])
    return incremental.report_stamp(code, parts, merged)


def _kept(folder: Path, stamp: str, previous: str | None) -> dict | None:
    """The earlier report.json of pages that can stay as they are, else None.

    They stay when nothing they depend on changed (same stamp), or when this
    build was told to leave them (no stamp: --report names another report).
    """
    path = folder / "report.json"
    if not path.exists() or (stamp and stamp != previous):
        return None
    return _read_summary(path)


def _feeds(site: config.SiteSettings, summaries: list[dict], files: dict[str, bytes],
           carried: dict[str, dict]) -> dict[str, bytes]:
    html = ["index.html", "method.html"] + [p for p in files if p.count("/") == 1 and p.endswith("/index.html")]
    html += [f"{slug}/index.html" for slug in carried]  # report pages; their unit pages link from them
    date = render.build_date()
    return {"feed.xml": feeds.atom_feed(site, summaries, date), "sitemap.xml": feeds.sitemap(site, html)}


def _read_summary(path: Path) -> dict | None:
    """An earlier build's report.json, if it is readable and has what the index shows."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        doc["slug"], doc["title"], doc["date"], doc["description"], doc["units"], doc["featured"]  # noqa: B018
        doc["photos"]["faces"], doc["photos"]["people"]  # noqa: B018
        return doc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s is unreadable (%s); that report is left out until it is built again", path, exc)
        return None


def _write_record(cache: Path, record: dict) -> None:
    try:
        cache.mkdir(parents=True, exist_ok=True)
        (cache / "last-build.json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    except OSError as exc:
        log.warning("could not write %s (%s)", cache / "last-build.json", exc)
