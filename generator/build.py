"""build(): the table of contents of a build. Each line is one stage; only render writes site/."""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import cache, collect, config, feeds, incremental, render
from .errors import UserError

if TYPE_CHECKING:  # the stages that compute a page (numpy and up): imported only when one is computed
    from . import faces, pictures, trends

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
    """Build the site, holding the output folder's lock so two builds never interleave. An output folder the
    build may not replace is refused before anything (the lock included) is written."""
    site = config.apply_site_overrides(config.load_site(options.content), options.base_url)
    every = [config.apply_overrides(r, options.smoke) for r in config.find_reports(options.content, site)]
    chosen = {r.slug for r in config.chosen_reports(every, options.report, options.content)}
    render.check_output(options.out, [options.content, options.cache, Path.cwd()], collect.photo_folders(every))
    with exclusive(options.out):
        return _build(options, site, every, chosen)


@contextmanager
def exclusive(out: Path):
    """An exclusive lock on the output folder (a hidden file beside it); a second build stops with a message."""
    try:
        import fcntl
    except ImportError:  # not on this platform: no lock
        yield
        return
    path = out.resolve().parent / f".{out.resolve().name}.lock"
    try:
        out.resolve().parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+")  # noqa: SIM115 (closed below, after the lock is released)
    except OSError as exc:
        raise UserError(f"--out {out}: cannot write beside it ({exc.strerror or exc}: {path}). Fix: choose an "
                        "output folder in a writable place.") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"another facetrend build is writing {out} right now. Fix: wait for it to finish, "
                            "then build again.") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class Page:
    """One report page (or the trends page) in this build: what it depends on, and what it gave."""

    report: config.Report
    nav: render.Nav
    stamp: str  # "" when this build was told to leave the page as it is (--report names another)
    kept: dict | None = None  # the earlier report.json, when the page stays as it is
    files: dict[str, bytes] = field(default_factory=dict)
    doc: dict | None = None
    images: pictures.EncodedImages | None = None
    clock: _Clock = field(default_factory=_Clock)
    retrain: bool = False  # --retrain, for the pages this build was told to build (--report), not the others


def _build(options: BuildOptions, site: config.SiteSettings, every: list[config.Report],
           chosen: set[str]) -> BuildResult:
    """Each changed page (of ``chosen``, the reports --report names): stamp -> kept? -> faces -> model ->
    analysis -> render; then one atomic write."""
    hashes = incremental.PhotoHashes.load(options.cache)  # photos unchanged since the last build are not read
    collected: dict[str, collect.Collection] = {}  # each report's photos, collected once per build
    code = incremental.code_stamp(render.TEMPLATES)
    previous = {} if options.retrain else incremental.load(options.cache, options.out)
    pages = _pages(site, every, chosen, options, hashes, collected, code, previous)
    for page in pages:
        if page.kept is None:
            _compute(page, site, every, options, collected)
    summaries = [p.doc or p.kept for p in pages if p.report.slug != config.TRENDS_SLUG and (p.doc or p.kept)]
    files = {k: v for p in pages for k, v in p.files.items()}
    trend = next((p.doc or p.kept for p in pages if p.report.slug == config.TRENDS_SLUG), None)
    carried = sorted(p.report.slug for p in pages if p.kept is not None)
    computed = [p for p in pages if p.kept is None]
    trends_on = len(config.trend_reports(every)) > 1
    front = incremental.front_stamp(code, [site, {p.report.slug: _report_digest(p, options.out) for p in pages},
                                           trends_on, render.build_date()])
    if not computed and render.front_unchanged(options.out, previous.get(incremental.FRONT_KEY), front, carried):
        written, shown = False, previous[incremental.FRONT_KEY]  # every page kept, and the front as it was built
        _sitemap_warning(site)
    else:
        from . import analyse  # the method page's numbers, from the code that uses them

        top = render.render_index(site, summaries, analyse.method_numbers(), trends=trends_on, trend=trend)
        top.update(_feeds(site, summaries, files, carried))
        files.update(top)
        written = bool(computed) or not render.unchanged(files, options.out, carried)
        shown = incremental.front_record(front, top)
    stamps = {p.report.slug: p.stamp for p in pages} | {incremental.FRONT_KEY: shown}
    if written:
        render.write_site(files, options.out, carried)
        incremental.save(options.cache, options.out, stamps)
        for page in computed:  # pictures kept for the next build only once this one is written
            page.images.save()
    else:
        if previous.get(incremental.FRONT_KEY) != shown:  # found unchanged the long way: the next build need not
            incremental.save(options.cache, options.out, stamps)
        log.debug("nothing changed: %s left as it was", options.out)  # the command says so, once
    last = {"reports": {p.report.slug: {"timings": p.clock.timings, "cached": p.clock.cached} for p in computed}}
    cache.write_record(options.cache, last)
    hashes.save(options.cache)
    return BuildResult([p.doc for p in computed], last, options.out, written)


def _pages(site: config.SiteSettings, every: list[config.Report], chosen: set[str], options: BuildOptions,
           hashes: incremental.PhotoHashes, collected: dict[str, collect.Collection], code: str,
           previous: dict) -> list[Page]:
    """Every page of the site with its stamp, and the earlier report.json of those that can stay (``previous``:
    the stamps the last build of this output folder recorded)."""
    chosen = set(chosen)
    if options.report is None:
        chosen.add(config.TRENDS_SLUG)
    navs = navigation(every)
    reports = list(every)
    years = config.trend_reports(every)  # the reports that count as years (front matter `trends: false` leaves one out)
    if len(years) > 1:
        reports.append(config.apply_overrides(config.trends_report(options.content, site, years), options.smoke))
    pages = []
    for report in reports:
        stamp = "" if report.slug not in chosen else _stamp(code, site, report, navs[report.slug], every, hashes,
                                                             collected)
        kept = _kept(options.out / report.slug, stamp, previous.get(report.slug))
        pages.append(Page(report, navs[report.slug], previous.get(report.slug, "") if kept else stamp, kept,
                          retrain=options.retrain and report.slug in chosen))
    return pages


def _compute(page: Page, site: config.SiteSettings, every: list[config.Report], options: BuildOptions,
             collected: dict[str, collect.Collection] | None = None) -> None:
    """Stages 2-6 for one page: faces, model, analysis, and its files rendered in memory. Only a page this build
    was told to build is retrained with --retrain; another whose pages are missing is computed from the cache."""
    soon = _import_soon(*LATER_IMPORTS)  # torch and the rest: only when a report is computed
    from . import analyse, pictures

    report, clock, retrain = page.report, page.clock, page.retrain
    found, years = _faces(report, every, options, clock, collected if collected is not None else {})
    from . import train  # waits for the import started above, outside the model stage's time

    with clock.stage("model"):
        trained = train.train_or_load(found, report.settings.model, options.cache, retrain)
    soon.join()  # no import in flight once the analysis may fork (experiments.run_sweep)
    result, cached, seconds = analyse.analyse(report, found, trained, analyse.Where(options.cache, retrain),
                                              clock.stage, years)
    clock.cached.update(faces=found.cached, model=trained.cached, **cached)
    clock.timings.update(seconds)
    with clock.stage("render"):
        kept = None if retrain else cache.images_archive(options.cache, report.slug)
        page.images = pictures.EncodedImages(kept)
        page.files, page.doc = render.render_report(result, site, page.nav, page.images)


# What a computed page imports later, seconds in all of a fresh process: imported in a thread while the faces
# stage runs (its workers do the work, the main process waits); a failure here is only raised where it is used.
LATER_IMPORTS = ("facetrend.train", "matplotlib.figure", "matplotlib.backends.backend_agg")


def _import_soon(*modules: str) -> threading.Thread:
    def run() -> None:
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001, S112 - the stage that needs it imports it again and says why
                continue

    thread = threading.Thread(target=run, name="facetrend-imports", daemon=True)
    thread.start()
    return thread


def _faces(report: config.Report, every: list[config.Report], options: BuildOptions, clock: _Clock,
           collected: dict[str, collect.Collection]) -> tuple[faces.Faces, trends.Years | None]:
    """A report's faces; for the trends page, every report's (cropped with the trends settings) and their years."""
    from . import trends

    if report.slug != config.TRENDS_SLUG:
        return crop_faces(report, report.settings, options, clock, collected), None
    parts = [(r, crop_faces(r, report.settings, options, clock, collected, colour=True))  # composites in colour
             for r in config.trend_reports(every)]
    return trends.combine(parts)


def crop_faces(report: config.Report, settings: config.ReportSettings, options: BuildOptions,
               clock: _Clock, collected: dict[str, collect.Collection] | None = None,
               colour: bool = False) -> faces.Faces:
    """Stages 2-3: the report's photos (as the stamp collected them, when it did), and a face from each
    (``settings``: whose face settings apply; ``colour``: the crops in colour too)."""
    from . import faces

    with clock.stage("collect"):
        photos = _collect(report, collected if collected is not None else {})
    with clock.stage("faces"):
        return faces.report_faces(report, settings.faces, options.cache, options.jobs, photos=photos, colour=colour)


def navigation(reports: list[config.Report]) -> dict[str, render.Nav]:
    """Each report's links to the one before and after it (by date, then folder name), and the trends'."""
    order = _by_date(reports)
    links = [render.Link(f"{r.slug}/index.html", r.settings.title) for r in order]
    trends_on = len(config.trend_reports(reports)) > 1
    navs = {r.slug: render.Nav(links[i - 1] if i > 0 else None, links[i + 1] if i + 1 < len(links) else None,
                               trends_on) for i, r in enumerate(order)}
    navs[config.TRENDS_SLUG] = render.Nav(links[-1] if links else None, None, trends_on)
    return navs


def _by_date(reports: list[config.Report]) -> list[config.Report]:
    return sorted(reports, key=lambda r: (r.settings.date, r.slug))


def _collect(report: config.Report, collected: dict[str, collect.Collection]) -> collect.Collection:
    """A report's photos, collected once per build (the stamp, the faces stage and the trends page share it)."""
    if report.slug not in collected:
        collected[report.slug] = collect.collect(report)
    return collected[report.slug]


def _stamp(code: str, site: config.SiteSettings, report: config.Report, nav: render.Nav,
           every: list[config.Report], hashes: incremental.PhotoHashes,
           collected: dict[str, collect.Collection] | None = None) -> str:
    """Everything this report's pages depend on (the trends page: every report's photos)."""
    sources = config.trend_reports(every) if report.slug == config.TRENDS_SLUG else [report]
    parts = [site, report.settings, report.narrative, nav, [r.slug for r in sources]]
    photos = [_collect(r, collected if collected is not None else {}) for r in sources]
    merged = collect.Collection([p for c in photos for p in c.photos], [s for c in photos for s in c.skipped])
    return incremental.report_stamp(code, parts, merged, hashes)


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
    out = {"feed.xml": feeds.atom_feed(site, summaries, date)}
    sitemap = feeds.sitemap(site, html)
    if sitemap is None:
        _sitemap_warning(site)
    else:
        out["sitemap.xml"] = sitemap
    return out


def _report_digest(page: Page, out: Path) -> str | None:
    """SHA-256 of the page's report.json as the site will hold it (a kept page's: as the site holds it now)."""
    name = f"{page.report.slug}/report.json"
    try:
        data = page.files[name] if page.kept is None else (out / name).read_bytes()
    except (KeyError, OSError):
        return None
    return hashlib.sha256(data).hexdigest()


def _sitemap_warning(site: config.SiteSettings) -> None:
    if not feeds.is_absolute(site):
        log.warning("no sitemap.xml: base_url %r is not a whole web address, and a sitemap needs absolute URLs. "
                    "Fix: set base_url in site.toml (e.g. https://user.github.io/repo/) or pass --base-url.",
                    site.base_url)


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
