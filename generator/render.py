"""Stage 8, render: Jinja2 + Markdown + figures -> site/. The only stage that writes there.

Every page and image is first made in memory (``render_report``,
``render_index``); ``write_site`` then writes them into a temporary folder
beside the output and swaps it into place, so a failed build leaves the
previous site untouched. Links are relative, so the site works from file://
and under any base URL prefix (GitHub project pages live at /<repo>/).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import markdown
import numpy as np
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from PIL import Image

from . import __version__, plots
from .config import Report, SiteSettings
from .describe import Caption
from .errors import UserError
from .faces import Faces
from .match import CLEAR_ACTIVATION, Matches
from .pictures import EncodedImages, Plot
from .rank import INTERPRETABLE, TREND_TOP, face_scores, interpretable

if TYPE_CHECKING:  # torch and scipy are imported only when a report is computed
    from .baselines import Baseline
    from .experiments import RunResult
    from .rank import Ranking
    from .train import Trained
    from .trends import Trend

log = logging.getLogger(__name__)

# The package's templates (templates/ in the repository, facetrend/templates installed: see pyproject.toml)
TEMPLATES = Path(str(resources.files("facetrend.templates")))
CONTACT_SHEET_MAX = 400  # faces shown on the contact sheet
CONTACT_THUMB_PX = 32  # their size there: the sheet is an overview, each face is published beside its units
MATCHES_SHOWN = 8  # best matches shown on a unit's page and published as face images
GALLERY, GALLERY_COLUMNS = 40, 8  # components shown per method in the comparison with PCA and NMF
PHOTO_THUMB_PX = 240  # publish_photos: full: the photos behind the shown faces, at most this size


@dataclass(frozen=True)
class ReportData:
    """Everything the stages computed for one report: render's input."""

    report: Report
    faces: Faces
    trained: Trained
    weights: np.ndarray  # (units, pixels)
    ranking: Ranking
    matches: Matches
    captions: dict[int, Caption]
    trend: Trend | None = None  # the trends page only: prevalence per report
    deeper: list[np.ndarray] = field(default_factory=list)  # hidden layers 2, 3, ...: preferred inputs (units, pixels)
    experiments: list[RunResult] = field(default_factory=list)  # the sweep's runs, the report's model first
    baselines: list[Baseline] = field(default_factory=list)  # PCA and NMF on the same training faces


@dataclass(frozen=True)
class UnitView:
    id: int
    rank: int
    face_score: float
    selectivity: float
    moved: float | None  # None when the random start is unknown
    agreement: float
    prevalence: float
    prevalence_photos: int
    prevalence_people: int
    matches: list[str]  # face ids, best first
    caption: str = ""
    caption_generated: bool = True
    matched_faces: list[dict] = field(default_factory=list)  # {id, photo, person} for the page
    distinctiveness: float = 0.0
    diversity: float = 0.0
    trend_score: float = 0.0
    group: int = 0  # faces in its composite and caption


@dataclass(frozen=True)
class Link:
    href: str
    title: str


@dataclass(frozen=True)
class Nav:
    """Links from a report to the reports before and after it (in date order), and to the trends page."""

    previous: Link | None = None
    next: Link | None = None
    trends: bool = False


@dataclass(frozen=True)
class ReportPage:
    """The render context of a report page: what the template may show."""

    root: str
    nav: Nav
    grid: list[dict]  # per unit: id and its box on the unit grid picture, in percent
    site: SiteSettings
    slug: str
    title: str
    description: str
    date: str
    narrative: str  # HTML from the author's Markdown
    photos_total: int
    faces: int
    people: int | None  # None when the photos do not say whose they are
    detected: int
    skipped: list[dict]
    contact_sheet_count: int
    layers: list[dict]
    model: dict
    face_settings: dict
    train_faces: int
    test_faces: int
    final_train_loss: float
    final_test_loss: float | None
    units: list[UnitView]
    featured: list[UnitView]
    interpretable: int
    interpretable_threshold: float
    clear_activation: float
    build_date: str
    version: str
    trend: dict | None = None  # years, and per featured unit its prevalence in each
    publish: str = "crops"  # publish_photos: full | crops | none
    excluded: int = 0
    nonfaces: str = ""  # what selectivity was measured against
    deeper: list[dict] = field(default_factory=list)  # per hidden layer past the first: layer, units, structured
    experiments: list[dict] = field(default_factory=list)  # per run of the sweep: label, losses, yield, cost
    baselines: list[dict] = field(default_factory=list)  # per baseline: name, components, errors, note
    gallery: int = 0  # components drawn per method in the comparison
    featured_asked: int = 0  # the `featured` setting (fewer are featured when units are silent)


# ---------------------------------------------------------------- report


def render_report(data: ReportData, site: SiteSettings, nav: Nav,
                  images: EncodedImages | None = None) -> tuple[dict[str, bytes], dict]:
    """Files of site/<slug>/ (path -> bytes) and the report.json document; ``images`` reuses pictures
    encoded by the previous build."""
    units = _unit_views(data)
    page = _report_page(data, site, units, nav)
    doc = report_json(data, page)
    common = {"site": site, "build_date": page.build_date, "version": page.version}
    files = {
        "index.html": _html("report.html", page=page, root=page.root, **common),
        "report.json": (json.dumps(doc, indent=1, ensure_ascii=False, sort_keys=True) + "\n").encode(),
        **_report_images(data, page, images or EncodedImages(None)),
    }
    if page.experiments:
        files["experiments.html"] = _html("experiments.html", page=page, root="../", **common)
    for unit in units:
        files[f"units/{unit.id}.html"] = _html(
            "unit.html", page=page, unit=unit, root="../../", **common,
            previous=unit.id - 1 if unit.id > 0 else None, next=unit.id + 1 if unit.id + 1 < len(units) else None)
    return {f"{data.report.slug}/{k}": v for k, v in files.items()}, doc


def _html(template: str, **context) -> bytes:
    return _env().get_template(template).render(**context).encode()


def _unit_views(data: ReportData) -> list[UnitView]:
    faces, r, m = data.faces, data.ranking, data.matches
    views = []
    for u in range(len(data.weights)):
        caption = data.captions.get(u)
        best = m.best[u]
        views.append(UnitView(
            id=u, rank=int(r.rank[u]), face_score=_round(r.face_score[u]),
            selectivity=_round(r.selectivity[u]), prevalence=_round(m.prevalence[u]),
            moved=None if np.isnan(r.moved[u]) else _round(r.moved[u]), agreement=_round(r.agreement[u]),
            prevalence_photos=int(m.photos[u]), prevalence_people=int(m.people[u]),
            matches=[faces.ids[i] for i in best],
            caption=caption.text if caption else "",
            caption_generated=caption.generated if caption else True,
            matched_faces=[_face(faces, i) for i in best[:MATCHES_SHOWN]],
            distinctiveness=_round(r.distinctiveness[u]), diversity=_round(r.diversity[u]),
            trend_score=_round(r.trend_score[u]), group=len(r.groups[u]),
        ))
    return views


def _face(faces: Faces, i: int) -> dict:
    person = faces.persons[i]
    name = faces.profiles.get(person, {}).get("name") if person is not None else None
    return {"id": faces.ids[i], "photo": faces.photos[i], "person": person, "name": name or person}


def _report_page(data: ReportData, site: SiteSettings, units: list[UnitView], nav: Nav) -> ReportPage:
    s, faces, t = data.report.settings, data.faces, data.trained
    n_in = faces.pixels[0].size
    layers = [{"name": "input", "size": n_in, "what": f"{s.faces.size}x{s.faces.size} grey pixels"}]
    layers += [{"name": f"hidden {i + 1}", "size": h, "what": f"{s.model.activation} units"}
               for i, h in enumerate(s.model.hidden)]
    layers += [{"name": "output", "size": n_in, "what": "reconstructed pixels (linear)"}]
    return ReportPage(
        root="../", nav=nav, grid=_grid_links(data), site=site, slug=data.report.slug, title=s.title,
        description=s.description,
        date=s.date, narrative=narrative_html(data.report.narrative, site.allow_html),
        photos_total=faces.total, faces=len(faces.ids), people=faces.people,
        detected=sum(faces.detected), skipped=_skipped(faces, s.publish_photos),
        contact_sheet_count=min(len(faces.ids), CONTACT_SHEET_MAX), layers=layers,
        model=asdict(s.model), face_settings=asdict(s.faces),
        train_faces=int((~t.test_mask).sum()), test_faces=int(t.test_mask.sum()),
        final_train_loss=t.train_loss[-1], final_test_loss=t.kept_test_loss(s.model.early_stopping),
        units=sorted(units, key=lambda v: v.rank), featured=[units[u] for u in data.ranking.featured],
        interpretable=interpretable(data.ranking.face_score),
        interpretable_threshold=INTERPRETABLE, clear_activation=CLEAR_ACTIVATION,
        build_date=build_date(), version=__version__, trend=_trend_view(data), publish=s.publish_photos,
        excluded=faces.excluded, nonfaces=data.ranking.nonfaces, deeper=_deeper_view(data),
        experiments=_experiments_view(data), baselines=_baselines_view(data), gallery=GALLERY,
        featured_asked=s.featured,
    )


def _baselines_view(data: ReportData) -> list[dict]:
    size = data.report.settings.faces.size
    return [{"name": b.name, "slug": b.name.lower(), "n_components": b.n_components,
             "train_error": _round(b.train_error), "test_error": _maybe(b.test_error), "note": b.note,
             "interpretable": interpretable(face_scores(b.components, size))}
            for b in data.baselines]


def _experiments_view(data: ReportData) -> list[dict]:
    """Each run of the sweep, measured against the first (the report's own model)."""
    if not data.experiments:
        return []
    base = data.experiments[0]
    base_settings = asdict(base.settings)
    finals = [r.final_test for r in data.experiments if r.final_test is not None]
    rows = []
    for i, r in enumerate(data.experiments):
        changes = {k: v for k, v in asdict(r.settings).items() if v != base_settings[k]}
        change = None if r.final_test is None or not base.final_test else r.final_test / base.final_test - 1
        rows.append({"index": i, "label": r.label, "changes": changes, "final_test_loss": _maybe(r.final_test),
                     "change": _maybe(change, 4), "face_like": r.face_like, "units": r.units,
                     "face_like_share": _round(r.face_like_share, 4),
                     "epochs": r.epochs_run, "gflop": round(r.gflop, 1),
                     "best": bool(finals) and r.final_test == min(finals),
                     "train_loss": [_round(v) for v in r.train_loss], "test_loss": [_round(v) for v in r.test_loss]})
    return rows


def _maybe(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else _round(value, digits)


def _deeper_view(data: ReportData) -> list[dict]:
    size = data.report.settings.faces.size
    out = []
    for k, images in enumerate(data.deeper):
        scores = face_scores(images, size)
        out.append({"layer": k + 2, "units": len(images), "structured": interpretable(scores),
                    "face_score": [_round(v) for v in scores]})
    return out


def _skipped(faces: Faces, publish: str) -> list[dict]:
    """Skipped files with their reasons; with publish_photos: none, reasons only (paths name people)."""
    return [{"path": None if publish == "none" else k.path, "reason": k.reason} for k in faces.skipped]


def narrative_html(text: str, allow_html: bool) -> str:
    """The author's Markdown as HTML; sanitised unless site.toml's allow_html says the text is trusted."""
    html = markdown.markdown(text, extensions=["extra", "sane_lists"])
    if allow_html:
        return html
    import nh3

    return nh3.clean(html, url_schemes={"http", "https", "mailto"}, link_rel="noopener noreferrer")


def _trend_view(data: ReportData) -> dict | None:
    """Years, and the featured units' prevalence per year with the biggest rise and fall among them."""
    t = data.trend
    if t is None:
        return None
    rows = [{"id": u, "prevalence": [_round(v) for v in t.prevalence[u]], "change": _round(t.change[u])}
            for u in data.ranking.featured]
    by_change = sorted(rows, key=lambda r: (r["change"], r["id"]))
    years = _years(t)
    return {"years": years, "rows": rows, "rose": by_change[-1] if rows else None,
            "fell": by_change[0] if rows else None}


def _unit_grid(data: ReportData) -> tuple[np.ndarray, int]:
    images = plots.weight_images(data.weights, data.report.settings.faces.size)
    return images, plots.grid_columns(len(images))


def _grid_links(data: ReportData) -> list[dict]:
    images, columns = _unit_grid(data)
    boxes = plots.grid_layout(images, columns, labels=True).boxes_percent()
    return [{"id": u, "box": box} for u, box in enumerate(boxes)]


def _report_images(data: ReportData, page: ReportPage, encoded: EncodedImages) -> dict[str, bytes]:
    """The report's pictures: unit grid, contact sheet, loss plot, one image per unit, matched faces."""
    images, columns = _unit_grid(data)
    publish = data.report.settings.publish_photos
    figures = {
        "img/units.webp": plots.tile_grid(images, columns, [str(u) for u in range(len(images))]),
        "img/loss.png": Plot(plots.loss_plot, (data.trained.train_loss, data.trained.test_loss)),
        "img/mean.png": Image.fromarray(_mean(data.faces.pixels), "L"),
    }
    if publish != "none":
        shown = plots.thumbnails(data.faces.pixels[:CONTACT_SHEET_MAX], CONTACT_THUMB_PX)
        figures["img/faces.webp"] = plots.tile_grid(shown, plots.grid_columns(len(shown), 2.0))
    if page.trend is not None and page.trend["rows"]:
        titles = [y["title"] for y in page.trend["years"]]
        figures["img/trend.png"] = Plot(plots.trend_plot, (titles, {f"unit {r['id']}": r["prevalence"]
                                                                     for r in page.trend["rows"]}))
    figures.update(_deeper_figures(data, page))
    figures.update(_baseline_figures(data, images))
    figures.update(_experiment_figures(data))
    figures.update({f"units/{u}.png": Image.fromarray(image, "L") for u, image in enumerate(images)})
    figures.update({f"units/{u}-mean.png": Image.fromarray(_mean(data.faces.pixels[group]), "L")
                    for u, group in enumerate(data.ranking.groups) if group})
    if publish != "none":
        shown_faces = sorted({i for best in data.matches.best for i in best[:MATCHES_SHOWN]})
        figures.update({f"faces/{data.faces.ids[i]}.png": Image.fromarray(data.faces.pixels[i], "L")
                        for i in shown_faces})
        if publish == "full":
            figures.update(_photo_thumbnails(data, shown_faces))
    return {path: encoded.encode(figure, path) for path, figure in figures.items()}


def _deeper_figures(data: ReportData, page: ReportPage) -> dict:
    """One grid per hidden layer past the first: each unit's preferred input."""
    size = data.report.settings.faces.size
    return {f"img/layer-{layer['layer']}.webp": plots.tile_grid(
                plots.weight_images(preferred, size), plots.grid_columns(len(preferred)),
                [str(u) for u in range(len(preferred))])
            for layer, preferred in zip(page.deeper, data.deeper, strict=True)}


def _baseline_figures(data: ReportData, unit_images: np.ndarray) -> dict:
    """The first components of PCA and NMF, and the autoencoder's first units by rank, as galleries."""
    if not data.baselines:
        return {}
    size = data.report.settings.faces.size
    first = np.argsort(data.ranking.rank, kind="stable")[:GALLERY]
    figures = {"img/autoencoder.webp": plots.tile_grid(unit_images[first], GALLERY_COLUMNS)}
    for b in data.baselines:
        draw = plots.part_images if b.components.min() >= 0 else plots.weight_images  # NMF parts are never negative
        figures[f"img/{b.name.lower()}.webp"] = plots.tile_grid(draw(b.components[:GALLERY], size), GALLERY_COLUMNS)
    return figures


def _experiment_figures(data: ReportData) -> dict:
    """The sweep's loss plot, and each run's most face-like units."""
    if not data.experiments:
        return {}
    size = data.report.settings.faces.size
    tested = bool(data.experiments[0].test_loss)
    figures = {"img/experiments.png": Plot(plots.sweep_plot, (
        {r.label: r.test_loss if tested else r.train_loss for r in data.experiments},
        "test loss" if tested else "training loss (no held-out faces)"))}
    figures.update({f"img/run-{i}.png": plots.tile_grid(plots.weight_images(r.showcase, size), len(r.showcase))
                    for i, r in enumerate(data.experiments)})
    return figures


def _mean(pixels: np.ndarray) -> np.ndarray:
    """The composite of some faces: their mean, pixel by pixel."""
    return np.round(pixels.mean(axis=0, dtype=np.float64)).astype(np.uint8)


def _photo_thumbnails(data: ReportData, shown: list[int]) -> dict[str, Image.Image]:
    """publish_photos: full: the photo each shown face came from, small, grey, without metadata."""
    from .collect import load_photo

    out = {}
    for i in shown:
        pixels = load_photo(data.report, data.faces.photos[i], data.report.settings.faces.max_pixels)
        if pixels is not None:
            picture = Image.fromarray(pixels, "L")
            picture.thumbnail((PHOTO_THUMB_PX, PHOTO_THUMB_PX))
            out[f"photos/{data.faces.ids[i]}.webp"] = picture
    return out


def report_json(data: ReportData, page: ReportPage) -> dict:
    """report.json: everything the page shows, machine-readable (contract in docs/)."""
    faces, t = data.faces, data.trained
    unit_fields = ("id", "rank", "trend_score", "distinctiveness", "diversity", "face_score", "selectivity",
                   "moved", "agreement", "prevalence",
                   "prevalence_photos", "prevalence_people", "matches")
    return {
        "slug": page.slug, "title": page.title, "description": page.description, "date": page.date,
        "generator": f"facetrend {__version__}",
        "photos": {"total": faces.total, "faces": len(faces.ids), "people": faces.people,
                   "detected": page.detected, "skipped": page.skipped, "excluded": faces.excluded},
        "model": {"config": page.model, "faces": page.face_settings, "cached": t.cached,
                  "train_faces": page.train_faces, "test_faces": page.test_faces,
                  "train_loss": [_round(v) for v in t.train_loss],
                  "test_loss": [_round(v) for v in t.test_loss]},
        "faces": _faces_json(data),
        "people": {} if page.publish == "none" else {p: faces.profiles.get(p, {}) for p in
                                                      sorted({p for p in faces.persons if p is not None})},
        "publish_photos": page.publish,
        "units": [{k: getattr(u, k) for k in unit_fields} for u in sorted(page.units, key=lambda u: u.id)],
        "featured": list(data.ranking.featured),
        "captions": {str(u): {"text": c.text, "generated": c.generated,
                              "effects": {k: _round(v, 3) for k, v in c.effects.items()}}
                     for u, c in sorted(data.captions.items())},
        "interpretable_units": page.interpretable,
        "nonfaces": page.nonfaces,
        "deeper_layers": page.deeper,
        "experiments": page.experiments,
        "baselines": [{k: v for k, v in b.items() if k != "slug"} for b in page.baselines],
        **_trend_json(data),
    }


def _years(t: Trend) -> list[dict]:
    return [{"slug": s, "title": n, "faces": c} for s, n, c in zip(t.years.slugs, t.years.titles, t.faces, strict=True)]


def _faces_json(data: ReportData) -> list[dict]:
    """Every face; with publish_photos: none, ids only (no photo paths, no names)."""
    if data.report.settings.publish_photos == "none":
        return [{"id": i, "photo": None, "person": None} for i in data.faces.ids]
    return [_face(data.faces, i) for i in range(len(data.faces.ids))]


def _trend_json(data: ReportData) -> dict:
    t = data.trend
    if t is None:
        return {}
    years = _years(t)
    return {"years": years, "trend": {str(u): [_round(v) for v in t.prevalence[u]] for u in range(len(t.change))}}


def _round(value: float, digits: int = 6) -> float:
    return round(float(value), digits)


# ---------------------------------------------------------------- index and site


def render_index(site: SiteSettings, summaries: list[dict], trends: bool = False) -> dict[str, bytes]:
    """The home page listing every report (newest first), and the stylesheet."""
    reports = sorted(summaries, key=lambda d: (d.get("date", ""), d["slug"]), reverse=True)
    common = {"root": "", "site": site, "build_date": build_date(), "version": __version__}
    html = _env().get_template("index.html").render(reports=reports, trends=trends, **common)
    return {"index.html": html.encode(), "method.html": _html("method.html", m=_method_numbers(), **common),
            "static/style.css": (TEMPLATES / "static" / "style.css").read_bytes()}


def _method_numbers() -> dict:
    """The constants the method page quotes, from the code that uses them."""
    from . import describe, rank
    from .config import FaceSettings

    return {"noise_ratio": rank.NOISE_LAPLACIAN_RATIO, "interpretable": INTERPRETABLE, "top": TREND_TOP,
            "min_backgrounds": rank.MIN_BACKGROUNDS, "same_look": rank.SAME_LOOK, "clear_activation": CLEAR_ACTIVATION,
            "regions": describe.REGIONS, "notable": describe.NOTABLE, "standard_errors": describe.STANDARD_ERRORS,
            "crop_max_side": FaceSettings().crop_max_side}


def build_date() -> str:
    """The build date from SOURCE_DATE_EPOCH, or "" (no build timestamps otherwise)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not epoch.isdigit():
        return ""
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%d")


GENERATOR_MARK = '<meta name="generator" content="facetrend'


def check_output(out: Path, keep: list[Path]) -> None:
    """Refuse an output folder whose replacement would destroy anything but an older site.

    ``out`` may be missing, empty, or a site facetrend built (its index.html
    carries the generator mark); it may not be, or hold, any of ``keep`` (the
    content folder, the cache, the current folder).
    """
    out = out.resolve()
    for path in keep:
        path = path.resolve()
        if path == out or out in path.parents:
            raise UserError(f"--out {out}: the build replaces this folder, which holds {path}. "
                            "Fix: choose an output folder of its own, such as site/.")
    if not out.exists():
        return
    if not out.is_dir():
        raise UserError(f"--out {out}: this is a file, not a folder. Fix: choose another --out.")
    index = out / "index.html"
    is_site = index.is_file() and GENERATOR_MARK in index.read_text(encoding="utf-8", errors="replace")
    if not is_site and any(out.iterdir()):
        raise UserError(f"--out {out}: this folder is not empty and is not a site facetrend built; the build "
                        "would replace it. Fix: choose an empty or new folder, or delete it yourself.")


def unchanged(files: dict[str, bytes], out: Path, carry: list[str]) -> bool:
    """True when ``out`` already holds exactly ``files`` plus the ``carry`` folders."""
    if not out.is_dir():
        return False
    present = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    present = {p for p in present if p.split("/", 1)[0] not in carry}
    return present == set(files) and all((out / rel).read_bytes() == data for rel, data in files.items())


def write_site(files: dict[str, bytes], out: Path, carry: list[str]) -> None:
    """Write ``files`` as the new site, keeping the ``carry`` report folders of the old one.

    The new tree is written beside ``out`` and swapped in with renames, so
    ``out`` holds either the old site or the complete new one.
    """
    out = out.resolve()
    tmp = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-new-", dir=out.parent))
        for rel, data in sorted(files.items()):
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        for slug in carry:
            shutil.copytree(out / slug, tmp / slug)
        _swap(tmp, out)
    except OSError as exc:
        raise UserError(f"could not write the site to {out} ({exc.strerror or exc}). The previous site is "
                        "unchanged. Fix: free disk space or choose a writable --out.") from None
    finally:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _swap(new: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}-old-", dir=out.parent))
        old.rmdir()
        out.rename(old)
    new.chmod(0o755)
    new.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@functools.cache
def _env() -> Environment:
    """One Jinja2 environment per process, so each template is compiled once (not once per unit page)."""
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
                       trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
