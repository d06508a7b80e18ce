"""build(): the table of contents of a build. Each line is one stage; only render writes site/."""

from __future__ import annotations

import json
import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from . import collect, config, describe, faces, match, rank, render, train

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildOptions:
    """Where to read and write, and the command-line overrides."""

    content: Path = Path("content")
    out: Path = Path("site")
    cache: Path = Path(".facetrend-cache")
    report: str | None = None  # build only this report; the others' pages are kept
    retrain: bool = False  # ignore cached models
    smoke: bool = False  # at most 2 epochs: the real path, fast (tests, previews)
    jobs: int = 0  # processes for cropping faces; 0: one per core


@dataclass
class BuildResult:
    reports: list[dict]  # the report.json documents built
    record: dict  # <cache>/last-build.json
    out: Path = field(default=Path("site"))


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
    """Build the site: every report's stages, then the index, then one atomic write."""
    site = config.load_site(options.content)
    reports = config.find_reports(options.content, site, options.report)
    render.check_output(options.out, [options.content, options.cache, Path.cwd()])
    files, docs, record = {}, [], {}
    for report in reports:
        report = config.apply_overrides(report, options.smoke)
        clock = _Clock()
        data = compute_report(report, options, clock)
        with clock.stage("render"):
            report_files, doc = render.render_report(data, site)
        files.update(report_files)
        docs.append(doc)
        record[report.slug] = {"timings": clock.timings, "cached": clock.cached}
    carried = _carried_reports(options, {d["slug"] for d in docs})
    files.update(render.render_index(site, docs + list(carried.values())))
    render.write_site(files, options.out, sorted(carried))
    last = {"reports": record}
    _write_record(options.cache, last)
    return BuildResult(docs, last, options.out)


def compute_report(report: config.Report, options: BuildOptions, clock: _Clock) -> render.ReportData:
    """Stages 2-7 for one report: everything its page shows, computed, nothing written to site/."""
    s = report.settings
    with clock.stage("collect"):
        photos = collect.collect(report)
    with clock.stage("faces"):
        found = faces.find_faces(photos, s.faces, options.cache, str(report.source), options.jobs)
    with clock.stage("model"):
        trained = train.train_or_load(found, s.model, options.cache, options.retrain)
    with clock.stage("rank"):
        acts = train.first_layer(trained.model, found.pixels)
        nonface_acts = train.first_layer(trained.model, rank.nonface_patches(s.faces.size))
        weights = train.unit_weights(trained.model)
        ranking = rank.rank_units(weights, s.faces.size, acts, nonface_acts, s.featured, list(s.captions))
    with clock.stage("match"):
        matches = match.match_units(acts, found, s.matches)
    with clock.stage("describe"):
        captions = describe.describe(found.pixels, matches.best, ranking.featured, s.matches, s.captions)
    clock.cached.update(faces=found.cached, model=trained.cached)
    return render.ReportData(report, found, trained, weights, ranking, matches, captions)


def _carried_reports(options: BuildOptions, built: set[str]) -> dict[str, dict]:
    """With --report, the other reports' existing pages stay in the new site: slug -> report.json."""
    if options.report is None or not options.out.is_dir():
        return {}
    present = {p.parent.name for p in options.content.glob("*/index.md")} - built
    carried = {}
    for path in sorted(options.out.glob("*/report.json")):
        if path.parent.name in present:
            summary = _read_summary(path)
            if summary is not None:
                carried[path.parent.name] = summary
    return carried


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
