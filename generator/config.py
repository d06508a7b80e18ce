"""Stage 1, config: site.toml + each report's front matter -> typed, frozen settings.

Every setting is declared once, in the dataclasses below, with its default and
its documentation (the ``doc`` metadata). ``settings_reference()`` renders
them as docs/settings.md, and a test keeps that file true.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import logging
import math
import re
import reprlib
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from .errors import UserError

log = logging.getLogger(__name__)

SLUG_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")  # \Z, not $: `$` also matches before a final newline
BUILTIN_PREFIX = "builtin:"
BUILTIN_SOURCES = ("lfw-subset",)
# Names the site's own files take at its top level (compared case-insensitively: macOS and Windows file systems).
RESERVED_SLUGS = {"index.html": "home page", "method.html": "method page", "feed.xml": "feed",
                  "sitemap.xml": "sitemap", "static": "style sheet folder", "robots.txt": "robots file",
                  "404.html": "not-found page", "cname": "GitHub Pages domain file (CNAME)"}

# Bounds on what users write (docs/reliability.md, "Bounds", gives each one's reason and measurement).
FILE_MAX_BYTES = 1_000_000  # index.md and site.toml: 20x a long post; read no further
TEXT_MAX_CHARS = 1_000  # a title, description, caption...: repeated on every page, so a 20 MB title is 20 MB a page
PATH_MAX_CHARS = 4_096  # a path setting (PATH_MAX on Linux)
ALIAS_EXPANSION_MAX = 1_000  # YAML nodes that aliases may add beyond those written ("billion laughs")
NARRATIVE_MAX_CHARS = 100_000  # the Markdown after the front matter: dense markup renders at ~20 us a character
NARRATIVE_MAX_DEPTH = 16  # nested lists and quotes; Python-Markdown exhausts Python's stack at about 250
MARKUP_BUDGET = 1_000_000  # characters the Markdown reader scans from each `[`, `(` or `<` to its close: quadratic
ABBREVIATIONS_MAX = 100  # `*[ABBR]: ...` definitions: each one is another pass over the whole text
FOOTNOTE_REFS_MAX = 300  # `[^note]` references: repeated ones cost the footnotes extension quadratic time
# Refused in text settings: control characters (XML 1.0 forbids C0 ones, and they rewrite terminals), C1
# controls, lone surrogates (not encodable as UTF-8) and the non-characters U+FFFE, U+FFFF. Tab and newline stay.
TEXT_REFUSED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
# The first words of the story `facetrend new` writes: a report still holding them is published with a warning.
PLACEHOLDER_STORY = "Write the story of this collection here"
PLACEHOLDER_END = "Until you replace this paragraph"  # its last sentence: a story edited at its start still warns


def _opt(default: Any, doc: str, **checks: Any) -> Any:
    """A setting: its default, one line of documentation and optional checks.

    Checks: ``min`` / ``max`` (inclusive bounds), ``max_exclusive``,
    ``nonempty`` (for lists), ``path`` (text that names a file: any characters, up to
    PATH_MAX_CHARS; other text is at most TEXT_MAX_CHARS with no control characters).
    """
    meta = {"doc": doc, **checks}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class FaceSettings:
    """How photos become face crops (the `faces:` section)."""

    size: int = _opt(64, "Side in pixels of the square grey face crops the model sees.", min=8, max=256)
    crop_max_side: int = _opt(
        160,
        "Images whose longer side is at most this many pixels are taken as face "
        "crops (their centred square is used, as `crops` says); larger ones go through face detection.",
        min=1,
        max=100000,
    )
    scale_factor: float = _opt(
        1.1, "Haar cascade: image pyramid step between detection scales.", min=1.01, max=2.0
    )
    min_neighbors: int = _opt(
        5, "Haar cascade: overlapping detections needed to accept a face.", min=0, max=50
    )
    min_face: int = _opt(
        40, "Smallest face, in pixels, that detection looks for; faces under 1/32 of the photo's shorter side "
        "are not looked for either (so a 24 MP photo is searched at about 10 MP, not in full).", min=8, max=10000
    )
    margin: float = _opt(
        0.2, "Extra border around a detected face box, as a fraction of its size.", min=0.0, max=1.0
    )
    detector: Literal["hog", "haar", "yunet"] = _opt(
        "hog", "Face detector: dlib's HOG frontal-face detector (99.3% of LFW news photos give a face), "
        "OpenCV's Haar cascade (the 2015 original; 85% with the eye check), or YuNet (needs `yunet_model`)."
    )
    crops: Literal["auto", "yes", "no"] = _opt(
        "auto", "Whether images up to `crop_max_side` pixels are face crops already: yes (used whole), no "
        "(searched like photos), or auto (used whole when the face check finds a face filling them, else "
        "skipped as \"small image with no face: logo or thumbnail?\"). Built-in photo sources are crops."
    )
    yunet_model: str = _opt(
        "", "Path to a YuNet ONNX model file (face_detection_yunet_*.onnx), relative to the report folder.",
        path=True,
    )
    verify_eyes: bool = _opt(
        True, "Haar: keep a detected face only when an eye is found in its upper part (drops false positives)."
    )
    align: bool = _opt(
        True, "Level, scale and centre every detected face the same way on its five landmarks (dlib's 5-point "
        "model in face-recognition-models); off: a square around the detector's box."
    )
    keep: Literal["largest", "all"] = _opt(
        "largest", "Faces kept from a photo with several: the largest, or all of at least `min_face` pixels."
    )
    equalize: Literal["none", "histogram", "clahe"] = _opt(
        "histogram", "Contrast of each crop: as it is, histogram-equalised, or CLAHE (local equalisation)."
    )
    max_pixels: int = _opt(
        50_000_000, "Photos declaring more pixels than this are skipped unread (decompression bombs).", min=1
    )
    near_duplicate_bits: int = _opt(
        10,
        "Near-duplicates count once (0: only identical files). Crops used whole: when their 256-bit "
        "perceptual hashes differ in at most this many bits (resized or recompressed copies: about 10 or "
        "fewer). Detected faces: when their aligned crops, or one and the other's mirror image, correlate at "
        "0.97 or more (copies: 0.98 and up; different photos of one LFW person: 0.94 at most).",
        min=0,
        max=64,
    )


@dataclass(frozen=True)
class ModelSettings:
    """The autoencoder and its training (the `model:` section)."""

    hidden: list[int] = _opt(
        [400],
        "Hidden layer sizes, outermost first. The units ranked on the report "
        "are those of the first hidden layer.",
        nonempty=True,
        min=1,
        max=20000,
    )
    activation: Literal["relu", "sigmoid"] = _opt("relu", "Hidden unit non-linearity.")
    dropout: float = _opt(
        0.5, "Dropout rate on the hidden units while training (0 turns it off).", min=0.0,
        max_exclusive=1.0,
    )
    noise: float = _opt(
        0.0,
        "Masking noise rate: the fraction of input pixels masked while training (a denoising "
        "autoencoder; 0 turns it off). A masked pixel takes the mean face's value, which is 0 once "
        "centred (with `center: false`, plain 0).",
        min=0.0,
        max_exclusive=1.0,
    )
    center: bool = _opt(
        True,
        "Subtract the mean training face from every input and add it back to the output. "
        "Without it, ReLU units fed all-positive pixels tend to die in the first optimiser steps.",
    )
    tied: bool = _opt(
        True,
        "Tied weights: the decoder uses the encoder's weights, transposed. On the ORL faces it makes most "
        "weight images pictures instead of static (median face score 0.87 against 0.14) and lowers the test loss.",
    )
    sparsity: float = _opt(
        0.0, "L1 penalty on the first hidden layer's activations (0: off): fewer units explain each face.",
        min=0.0, max=100.0,
    )
    early_stopping: int = _opt(
        0, "Stop when the test loss has not improved for this many epochs and keep the best epoch (0: off).",
        min=0,
    )
    epochs: int = _opt(30, "Passes over the training faces.", min=1, max=100000)
    batch_size: int = _opt(100, "Faces per optimiser step.", min=1)
    lr: float = _opt(0.001, "AdamW learning rate.", min=0.0, max=10.0)
    weight_decay: float = _opt(
        0.0, "AdamW's decoupled weight decay: each step multiplies every weight by 1 - lr x this (0: plain Adam).",
        min=0.0, max=10.0,
    )
    seed: int = _opt(0, "Seeds the split, the initial weights and the batch order.", min=0, max=2**32 - 1)
    test_fraction: float = _opt(
        0.2,
        "Share of faces held out to measure test loss. Split by person where "
        "persons are known, so no person is in both sets.",
        min=0.0,
        max_exclusive=1.0,
    )


@dataclass(frozen=True)
class ExperimentSettings:
    """The experiments page (the `experiments:` section): variations of the model, trained and compared."""

    enabled: bool = _opt(
        False,
        "Train a sweep of variations of this report's model and publish an experiments page comparing their "
        "test loss, interpretable units and cost. Each run is cached like the main model.",
    )
    runs: list[dict[str, Any]] = _opt(
        [],
        "Your own sweep: one mapping of `model:` settings per run, each changing the report's model "
        "(e.g. `- {activation: sigmoid}`). Empty: the default sweep, one change at a time: ReLU or sigmoid, "
        "100/400/1000 units, dropout on or off, masking noise 0 or 0.2.",
    )


@dataclass(frozen=True)
class ReportSettings:
    """One report: the YAML front matter of content/<report>/index.md."""

    preset: Literal["", "original-2015"] = _opt(
        "",
        "Start from a named set of settings; your own keys still win. original-2015: the 2015 post's "
        "model (400 ReLU units, dropout 0.5, 30 epochs, batch 100, no centring or equalisation).",
    )
    title: str = _opt("", "Report title; defaults to the folder name.")
    description: str = _opt("", "One-sentence summary shown on the index page.")
    date: str = _opt(
        "", "Date of the report, best as YYYY-MM-DD: shown on it, orders the reports, dates its feed entry."
    )
    photos: str = _opt(
        "photos",
        "A folder of photos with one subfolder per person (relative to the "
        "report folder), or a built-in source: `builtin:lfw-subset` (the 100 "
        "LFW faces scikit-image ships).",
        path=True,
    )
    featured: int = _opt(
        3, "How many units the report features: the first by trend score (see the method page).", min=0)
    trends: bool = _opt(
        True, "Count this report as a year on the trends page (years in the order of their `date`); "
        "false leaves it out, as the demo does.",
    )
    matches: int = _opt(
        12, "How many best-matching faces are listed for every unit.", min=1, max=1000
    )
    exclude: list[str] = _opt(
        [], "Face ids or photo paths (relative to the photos folder) left out of training and every page.",
        path=True,
    )
    exclude_people: list[str] = _opt(
        [], "People (photo folder names) left out of training and every page: a takedown is one line.",
        path=True,
    )
    publish_photos: Literal["full", "crops", "none"] = _opt(
        "crops",
        "What the site shows of individual people: face crops (crops), crops and thumbnails of photos "
        "without a face (full), or no individual face at all, only unit images and composites (none).",
    )
    publish_skipped: bool = _opt(
        False,
        "List each skipped file by name on the public report page (its name can name a person). By default the "
        "page gives only how many files were skipped for each reason; report.json and `facetrend review` list "
        "every one.",
    )
    captions: dict[int, str] = _opt(
        {}, "Your own caption per unit id, replacing the generated one (e.g. `17: long hair`); "
        "a unit you caption is featured too."
    )
    baselines: bool = _opt(
        True,
        "Fit PCA (eigenfaces) and NMF with as many components as the first hidden layer has units, on the same "
        "training faces, and show them beside the autoencoder with their test error (cached like the model).",
    )
    faces: FaceSettings = field(default_factory=FaceSettings, metadata={"doc": "Face crops."})
    model: ModelSettings = field(default_factory=ModelSettings, metadata={"doc": "The model."})
    experiments: ExperimentSettings = field(default_factory=ExperimentSettings,
                                            metadata={"doc": "The experiments page."})


@dataclass(frozen=True)
class SiteSettings:
    """The whole site: content/site.toml."""

    title: str = _opt("facetrend", "Site title, shown on every page.")
    description: str = _opt("", "Subtitle on the index page.")
    author: str = _opt("", "Author named in the footer.")
    language: str = _opt("en", "HTML lang attribute (e.g. en, ja).")
    base_url: str = _opt(
        "/",
        "Where the site is published, e.g. https://user.github.io/repo/. Links "
        "are relative, so pages also work from file:// and under any prefix.",
    )
    allow_html: bool = _opt(
        False,
        "Let the reports' Markdown carry raw HTML as written. Off: it is sanitised (no scripts, event "
        "handlers or javascript: links), which is what you want when anyone else writes the text.",
    )
    defaults: dict[str, Any] = _opt(
        {}, "A [defaults] table: report settings every report starts from."
    )
    trends: dict[str, Any] = _opt(
        {},
        "A [trends] table: report settings for the trends page, which trains one model on "
        "every report's faces when there are two reports or more (photos is ignored).",
    )


@dataclass(frozen=True)
class Report:
    """A report found in the content folder, with its resolved settings."""

    slug: str
    folder: Path
    source: Path  # the index.md the settings came from
    settings: ReportSettings
    narrative: str  # Markdown after the front matter


# ---------------------------------------------------------------- validation


def _fail(where: str, key: str, problem: str, fix: str) -> UserError:
    return UserError(f"{where}: setting `{key}` {problem}. Fix: {fix}.")


def _quote(value: Any) -> str:
    """``repr(value)`` cut short: at most about 60 characters, whatever its size or depth."""
    short = reprlib.Repr()
    short.maxstring = short.maxother = short.maxlong = 60
    short.maxlist = short.maxtuple = short.maxdict = short.maxset = 4
    short.maxlevel = 3
    try:
        return short.repr(value)
    except ValueError:  # an int past Python's 4,300-digit str() limit
        return f"a {type(value).__name__} too long to show"


def _key_text(key: Any) -> str:
    """A key as messages spell it, cut short."""
    text = str(key)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_text(value: Any, tp: Any, meta: dict, where: str, key: str) -> None:
    """Text settings: bounded in length; no control characters unless the text is a path."""
    origin = typing.get_origin(tp)
    if origin is list and typing.get_args(tp)[0] is str:
        for item in value:
            _check_text(item, str, meta, where, key)
    elif origin is dict and typing.get_args(tp)[1] is str:
        for k, item in value.items():
            _check_text(item, str, meta, where, f"{key}.{_key_text(k)}")
    elif tp is str:
        limit = PATH_MAX_CHARS if meta.get("path") else TEXT_MAX_CHARS
        if len(value) > limit:
            raise _fail(where, key, f"is {len(value):,} characters long, above {limit:,}", "shorten it")
        bad = None if meta.get("path") else TEXT_REFUSED.search(value)
        if bad:
            raise _fail(where, key, f"holds a control character (U+{ord(bad.group()):04X}) at position "
                        f"{bad.start()}", "remove it: control characters would break feed.xml and the pages")


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(c) for c in typing.get_args(tp))
    if origin is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if origin is dict:
        return "a table (mapping)"
    return {int: "a whole number", float: "a number", str: "text", bool: "true or false"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _check_range(value: Any, meta: dict, where: str, key: str) -> None:
    items = value if isinstance(value, list) else [value]
    if meta.get("nonempty") and not items:
        raise _fail(where, key, "is empty", "give at least one value")
    for item in items:
        if not isinstance(item, (int, float)):
            continue
        if "min" in meta and item < meta["min"]:
            raise _fail(where, key, f"is {item}, below {meta['min']}", f"use a value >= {meta['min']}")
        if "max" in meta and item > meta["max"]:
            raise _fail(where, key, f"is {item}, above {meta['max']}", f"use a value <= {meta['max']}")
        if "max_exclusive" in meta and item >= meta["max_exclusive"]:
            raise _fail(
                where, key, f"is {item}", f"use a value below {meta['max_exclusive']}"
            )


def _coerce(value: Any, tp: Any, where: str, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it in canonical form."""

    def wrong() -> UserError:  # built only when raised: quoting a value costs time
        return _fail(where, key, f"is {_quote(value)}, not {_type_name(tp)}", f"write {_type_name(tp)}")

    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where, key + ".")
    if origin is Literal:
        choices = typing.get_args(tp)
        if isinstance(value, bool) and {"yes", "no"} <= set(choices):  # YAML reads a bare yes/no as true/false
            value = "yes" if value else "no"
        if value not in choices:
            raise _fail(where, key, f"is {_quote(value)}", "use one of " + ", ".join(map(str, choices)))
        return value
    if origin is list:
        if not isinstance(value, list):
            raise wrong()
        return [_coerce(v, typing.get_args(tp)[0], where, key) for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise wrong()
        ktype, vtype = typing.get_args(tp)
        out = {}
        for k, v in value.items():
            name = f"{key}.{_key_text(k)}"
            kk = _coerce(_int_key(k) if ktype is int else k, ktype, where, name)
            out[kk] = _coerce(v, vtype, where, name) if vtype is not Any else v
        return dict(sorted(out.items()))
    if tp is bool:
        if not isinstance(value, bool):
            raise wrong()
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong()
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as text
            value = _parse_float(value)
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 1e300:
            raise wrong()  # too large to be a float
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise wrong()
        return float(value)
    if tp is str:
        if isinstance(value, (int, float, datetime.date)) and not isinstance(value, bool):
            return value.isoformat() if isinstance(value, datetime.date) else str(value)
        if not isinstance(value, str):
            raise wrong()
        return value
    raise TypeError(f"unsupported setting type {tp!r}")  # a bug in the schema, not user error


def _parse_float(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


def _int_key(k: Any) -> Any:
    if isinstance(k, str) and k.strip().isdecimal() and k.strip().isascii():
        return int(k)
    return k


def _build(cls: type, raw: Any, where: str, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from the mapping ``raw``, validating every key."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        name = f"setting `{prefix.rstrip('.')}`" if prefix else "the settings"
        raise UserError(f"{where}: {name} must be a mapping, not {_quote(raw)}. Fix: write indented "
                        "`key: value` lines under it (see docs/settings.md).")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in raw.items():
        if key not in fields:
            close = difflib.get_close_matches(_key_text(key), fields, n=1)
            fix = f"did you mean `{prefix}{close[0]}`?" if close else (
                "valid keys here are " + ", ".join(sorted(fields))
            )
            raise UserError(f"{where}: unknown setting `{prefix}{_key_text(key)}`. Fix: {fix} "
                            "(see docs/settings.md).")
        full = prefix + key
        coerced = _coerce(value, hints[key], where, full)
        _check_range(coerced, fields[key].metadata, where, full)
        _check_text(coerced, hints[key], fields[key].metadata, where, full)
        values[key] = coerced
    return cls(**values)


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


# ---------------------------------------------------------------- loading


def load_site(content: Path) -> SiteSettings:
    """Read content/site.toml (optional: defaults apply without it)."""
    if not content.is_dir():
        raise UserError(
            f"{content}: the content folder does not exist. Fix: run from the project "
            "root, pass --content DIR, or create one with `facetrend new SLUG`."
        )
    path = content / "site.toml"
    if not path.exists() and not path.is_symlink():
        return SiteSettings()
    try:
        raw = tomllib.loads(_read_text(path))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:200]
        raise UserError(f"{path}: is not valid TOML ({reason}). Fix: correct the syntax.") from None
    site = _build(SiteSettings, raw, str(path))
    _check_base_url(site.base_url, str(path))
    _build(ReportSettings, site.defaults, str(path), "defaults.")  # report defaults checked early
    _build(ReportSettings, site.trends, str(path), "trends.")
    return site


def _read_text(path: Path) -> str:
    """A settings file's text: a regular file of at most FILE_MAX_BYTES, in UTF-8 (else UnicodeDecodeError)."""
    if not path.is_file():  # a FIFO would block the read, a device never end
        raise UserError(f"{path}: is not a regular file. Fix: make it a text file.")
    return read_bounded(path, FILE_MAX_BYTES, "shorten it (photos and other files go beside it, not in it)"
                        ).decode("utf-8")


def read_bounded(path: Path, limit: int, fix: str) -> bytes:
    """A file's bytes, at most ``limit`` of them: a larger or unreadable file stops the build with ``fix``."""
    try:
        with path.open("rb") as file:
            data = file.read(limit + 1)
    except OSError as exc:
        raise UserError(f"{path}: cannot be read ({exc.strerror or exc}). Fix: check its permissions.") from None
    if len(data) > limit:
        raise UserError(f"{path}: is larger than {limit:,} bytes. Fix: {fix}.")
    return data


def _check_base_url(url: str, where: str) -> None:
    if not re.fullmatch(r"(https?://[^\s\"'<>]+|/[^\s\"'<>]*)", url):
        raise UserError(f"{where}: setting `base_url` is {_quote(url)}, not a web address. Fix: use the address "
                        "the site is published at, such as https://user.github.io/repo/, or /.")


def split_front_matter(text: str, path: Path) -> tuple[dict, str]:
    """Split index.md into its YAML front matter (a mapping) and Markdown body."""
    text = text.lstrip("\ufeff")
    match = re.match(r"^---[ \t]*\r?\n(.*?)^---[ \t]*\r?\n?(.*)$", text, re.S | re.M)
    if not match:
        return {}, text
    try:
        data = _load_yaml(match.group(1), path) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" near line {mark.line + 2}" if mark else ""
        raise UserError(
            f"{path}: the front matter is not valid YAML{line}. Fix: check the "
            "indentation and quote values that contain ':' or '#'."
        ) from None
    except (ValueError, KeyError, AttributeError, TypeError, RecursionError) as exc:
        # PyYAML builds values it cannot represent (2025-02-30, !!int x, 5,000-digit numbers) this way
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:200]
        raise UserError(
            f"{path}: the front matter holds a value YAML cannot read ({reason}). Fix: quote that value "
            "(e.g. date: \"2025-02-30\") or correct it."
        ) from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: the front matter must be key: value lines. Fix: see docs/settings.md.")
    return data, match.group(2)


def _load_yaml(text: str, path: Path) -> Any:
    """``yaml.safe_load``, refusing alias expansion beyond ALIAS_EXPANSION_MAX and warning of duplicate keys."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        written, duplicates = _walk_nodes(node)
        if _expanded_size(node, written + ALIAS_EXPANSION_MAX) > written + ALIAS_EXPANSION_MAX:
            raise UserError(f"{path}: the front matter's aliases (*name) expand to more than "
                            f"{ALIAS_EXPANSION_MAX:,} values beyond those written, or refer to themselves. "
                            "Fix: write the values out, or use fewer, unnested aliases.")
        for key, first, again in duplicates:
            log.warning("%s: setting `%s` is written twice (lines %d and %d); the last one is used",
                        path, _key_text(key), first + 2, again + 2)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _walk_nodes(root: yaml.Node) -> tuple[int, list[tuple[str, int, int]]]:
    """The number of distinct nodes under ``root``, and each mapping's repeated keys (key, line, line)."""
    seen, stack, duplicates = {id(root)}, [root], []
    while stack:
        node = stack.pop()
        children = _children(node)
        if isinstance(node, yaml.MappingNode):
            duplicates += _repeated_keys(node)
        for child in children:
            if id(child) not in seen:
                seen.add(id(child))
                stack.append(child)
    return len(seen), duplicates


def _repeated_keys(node: yaml.MappingNode) -> list[tuple[str, int, int]]:
    lines: dict[tuple[str, str], int] = {}
    repeated = []
    for key, _ in node.value:
        if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
            if (key.tag, key.value) in lines:
                repeated.append((key.value, lines[(key.tag, key.value)], key.start_mark.line))
            lines[(key.tag, key.value)] = key.start_mark.line
    return repeated


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _expanded_size(root: yaml.Node, limit: int) -> int:
    """Nodes under ``root`` with every alias expanded, counted up to just past ``limit`` (a cycle never ends)."""
    count, stack = 0, [root]
    while stack and count <= limit:
        count += 1
        stack += _children(stack.pop())
    return count


def check_slug(folder: Path) -> str:
    """The report folder's name, which becomes its URL and its folder in the site."""
    slug = folder.name
    if not SLUG_RE.match(slug):
        raise UserError(
            f"{folder}: the report folder name {_quote(slug)} cannot be a URL. Fix: rename it "
            "using letters, digits, '-', '_' or '.'."
        )
    what = RESERVED_SLUGS.get(slug.lower())
    if what:
        raise UserError(f"{folder}: the report folder name {slug!r} is the address of the site's own {what}. "
                        "Fix: rename that report folder.")
    return slug


def check_narrative(text: str, source: Path) -> None:
    """Bound the Markdown's size, nesting and markup so that rendering it takes well under a second."""
    if len(text) > NARRATIVE_MAX_CHARS:
        raise UserError(f"{source}: the text after the front matter is {len(text):,} characters long, above "
                        f"{NARRATIVE_MAX_CHARS:,}. Fix: shorten it, or split it into several reports.")
    for number, line in enumerate(text.splitlines(), 1):
        if _depth(line) > NARRATIVE_MAX_DEPTH:
            raise UserError(f"{source}: the text nests lists or quotes more than {NARRATIVE_MAX_DEPTH} deep "
                            f"(text line {number}). Fix: flatten it, or indent code blocks less.")
    cost = 0
    for block in re.split(r"\n[ \t]*\n", text):
        cost += _markup_cost(block, MARKUP_BUDGET - cost)
        if cost > MARKUP_BUDGET:
            raise UserError(f"{source}: the text has too many unclosed `[`, `(` or `<`, or `#` or `:` lines, "
                            "in long paragraphs for the Markdown reader (its time grows with their number times "
                            "the paragraph's length). Fix: split long paragraphs with blank lines, or write a "
                            "stray bracket as \\[ or &lt;.")
    if len(re.findall(r"^[ \t]*\*\[", text, re.M)) > ABBREVIATIONS_MAX:
        raise UserError(f"{source}: the text defines more than {ABBREVIATIONS_MAX} abbreviations (`*[...]:` "
                        "lines). Fix: keep fewer.")
    if text.count("[^") > FOOTNOTE_REFS_MAX:
        raise UserError(f"{source}: the text has more than {FOOTNOTE_REFS_MAX} footnote marks (`[^...]`). "
                        "Fix: keep fewer footnotes.")


_CONTAINER = re.compile(r"[ \t]*(?:>|[-*+](?=[ \t])|\d{1,9}[.)](?=[ \t]))")


def _depth(line: str) -> int:
    """How deep a line nests: its indentation in steps of 4 columns, and the quote and list markers it opens."""
    line = line.expandtabs(4)
    depth, pos = (len(line) - len(line.lstrip(" "))) // 4, 0
    while match := _CONTAINER.match(line, pos):
        depth, pos = depth + 1, match.end()
    return depth


_CLOSERS = {"[": "]", "(": ")", "<": ">"}


def _markup_cost(block: str, limit: int) -> int:
    """Characters the Markdown reader scans in one paragraph, counted up to just past ``limit``.

    From each `[`, `(` or `<` it scans to the closing bracket, or to the paragraph's end when
    there is none; each heading `#` or definition `:` line inside a paragraph costs its length (the
    reader splits the paragraph there and copies the rest).
    """
    cost = len(re.findall(r"^[ \t]*[#:]", block, re.M)) * len(block)
    for match in re.finditer(r"[\[(<]", block):
        if cost > limit:
            break
        close = block.find(_CLOSERS[match.group()], match.end())
        cost += (len(block) if close < 0 else close) - match.start()
    return cost


def load_report(folder: Path, site: SiteSettings) -> Report:
    """Read one report folder's index.md and resolve its settings."""
    source = folder / "index.md"
    slug = check_slug(folder)
    try:
        text = _read_text(source)
    except UnicodeDecodeError:
        raise UserError(f"{source}: is not UTF-8 text. Fix: save it as UTF-8.") from None
    front, narrative = split_front_matter(text, source)
    check_narrative(narrative, source)
    if PLACEHOLDER_STORY in narrative or PLACEHOLDER_END in narrative:
        log.warning("%s: the story is still the placeholder `facetrend new` wrote (\"%s ...\"), and the "
                    "page publishes it as it is. Fix: replace it with your own story.", source, PLACEHOLDER_STORY)
    merged = _with_preset(_deep_merge(site.defaults, front), source)
    settings = _build(ReportSettings, merged, str(source))
    _check_captions(settings, source)
    settings = dataclasses.replace(settings, experiments=_check_experiments(settings.experiments, str(source)))
    _check_yunet(settings, folder, source)
    if not settings.title:
        settings = dataclasses.replace(settings, title=slug)
    _check_photos_setting(settings.photos, source)
    return Report(slug, folder, source, settings, narrative)


PRESETS: dict[str, dict] = {
    "original-2015": {
        "faces": {"equalize": "none"},
        "model": {"hidden": [400], "activation": "relu", "dropout": 0.5, "noise": 0.0, "epochs": 30,
                  "batch_size": 100, "lr": 0.001, "weight_decay": 0.0, "center": False, "tied": False,
                  "sparsity": 0.0, "early_stopping": 0},
    },
}


def _with_preset(raw: dict, source: Path) -> dict:
    """The preset's settings under the ones written out (which win)."""
    name = raw.get("preset", "")
    if name in ("", None) or not isinstance(name, str) or name not in PRESETS:
        return raw  # an unknown preset is reported by the schema check, with the valid names
    return _deep_merge(PRESETS[name], raw)


SPLIT_KEYS = {"seed", "test_fraction"}  # model settings that choose the held-out faces


def _check_experiments(experiments: ExperimentSettings, where: str) -> ExperimentSettings:
    """Each run of a custom sweep must be valid `model:` settings; returned in canonical form (1e-4 a float)."""
    runs = []
    for i, run in enumerate(experiments.runs):
        built = _build(ModelSettings, run, where, f"experiments.runs.{i}.")
        for key in SPLIT_KEYS & set(run):
            raise _fail(where, f"experiments.runs.{i}.{key}", "would hold out other faces than the report's model, so "
                        "its test loss would not compare", "leave it out: every run is tested on the report's "
                        "held-out faces (to try another seed, build the report with another `model.seed`)")
        runs.append({key: getattr(built, key) for key in run})
    return dataclasses.replace(experiments, runs=runs)


def _check_captions(settings: ReportSettings, source: Path) -> None:
    units = settings.model.hidden[0]
    for unit in settings.captions:
        if not 0 <= unit < units:
            raise UserError(
                f"{source}: setting `captions.{unit}` names a unit the model does not have. "
                f"Fix: use a unit id from 0 to {units - 1} (the report's unit grid shows them)."
            )


def _check_yunet(settings: ReportSettings, folder: Path, source: Path) -> None:
    faces = settings.faces
    if faces.detector != "yunet":
        return
    try:
        found = bool(faces.yunet_model) and (folder / faces.yunet_model).is_file()
    except OSError:  # e.g. a name longer than the file system allows
        found = False
    if not found:
        raise UserError(
            f"{source}: setting `faces.detector` is yunet but `faces.yunet_model` "
            f"({faces.yunet_model or 'not set'}) is not a file. Fix: download a YuNet model "
            "(face_detection_yunet_2023mar.onnx) next to index.md and name it in `faces.yunet_model`, "
            "or use `detector: hog` (the default)."
        )


def _check_photos_setting(photos: str, source: Path) -> None:
    if photos.startswith(BUILTIN_PREFIX) and photos[len(BUILTIN_PREFIX):] not in BUILTIN_SOURCES:
        raise UserError(
            f"{source}: setting `photos` names an unknown built-in source {_quote(photos)}. "
            f"Fix: use one of {', '.join(BUILTIN_PREFIX + s for s in BUILTIN_SOURCES)} or a folder."
        )


def find_reports(content: Path, site: SiteSettings, only: str | None = None) -> list[Report]:
    """Every folder of ``content`` holding an index.md, sorted by slug."""
    folders = sorted(p.parent for p in content.glob("*/index.md"))
    if any(f.name == TRENDS_SLUG for f in folders):
        raise UserError(f"{content / TRENDS_SLUG}: `{TRENDS_SLUG}` is the trends page's address. "
                        "Fix: rename that report folder.")
    if only is not None:
        folders = [f for f in folders if f.name == only] or _no_report(content, only)
    return [load_report(f, site) for f in folders]


def chosen_reports(reports: list[Report], only: str | None, content: Path) -> list[Report]:
    """Of the reports read already, those `--report` names (all of them without it)."""
    if only is None:
        return reports
    return [r for r in reports if r.slug == only] or _no_report(content, only)


def _no_report(content: Path, only: str) -> typing.NoReturn:
    raise UserError(f"{content}: there is no report {_quote(only)} (no folder of that name with an index.md). "
                    "Fix: check --report, or create it with `facetrend new SLUG`.")


TRENDS_SLUG = "trends"


def trend_reports(reports: list[Report]) -> list[Report]:
    """The reports that count as years on the trends page (`trends: true`), in order of date, then folder name."""
    return sorted((r for r in reports if r.settings.trends), key=lambda r: (r.settings.date, r.slug))


def trends_report(content: Path, site: SiteSettings, reports: list[Report]) -> Report:
    """The trends page as a report: site defaults, then site.toml's [trends] table."""
    source = content / "site.toml"
    settings = _build(ReportSettings, _deep_merge(site.defaults, site.trends), str(source), "trends.")
    _check_captions(settings, source)
    if not site.trends.get("title"):
        settings = dataclasses.replace(settings, title=f"Trends across {len(reports)} reports")
    narrative = ("One model trained on the faces of every report together, so that the same features "
                 "can be counted in each: " + ", ".join(r.settings.title for r in reports) + ".")
    return Report(TRENDS_SLUG, content, source, settings, narrative)


def apply_site_overrides(site: SiteSettings, base_url: str | None) -> SiteSettings:
    """Merge command-line overrides into the site settings."""
    if base_url is None:
        return site
    _check_base_url(base_url, "--base-url")
    return dataclasses.replace(site, base_url=base_url)


def apply_overrides(report: Report, smoke: bool) -> Report:
    """Merge command-line overrides into a report's settings (the only place that does)."""
    if not smoke:
        return report
    model = dataclasses.replace(report.settings.model, epochs=min(report.settings.model.epochs, 2))
    runs = [{**run, "epochs": min(run.get("epochs", model.epochs), 2)} for run in report.settings.experiments.runs]
    experiments = dataclasses.replace(report.settings.experiments, runs=runs)
    return dataclasses.replace(report, settings=dataclasses.replace(report.settings, model=model,
                                                                    experiments=experiments))


# ---------------------------------------------------------------- documentation


def _default_text(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        return repr(f.default).replace("'", '"')
    value = f.default_factory()  # type: ignore[misc]
    return str(value).replace("'", '"')


def _rows(cls: type, prefix: str) -> list[str]:
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            rows += _rows(hints[f.name], f"{prefix}{f.name}.")
            continue
        doc = f.metadata["doc"].replace("|", "\\|")
        rows.append(f"| `{prefix}{f.name}` | `{_default_text(f)}` | {doc} |")
    return rows


def settings_reference() -> str:
    """docs/settings.md, generated from the schema above."""
    head = "| setting | default | meaning |\n|---|---|---|"
    return "\n".join([
        "# Settings",
        "",
        "Generated from `generator/config.py` by `facetrend settings > docs/settings.md`;",
        "a test checks that this file matches the code.",
        "",
        "## content/site.toml",
        "",
        head,
        *_rows(SiteSettings, ""),
        "",
        "## content/<report>/index.md front matter",
        "",
        "Nested sections are YAML mappings (`model:` then indented `hidden: [400]`).",
        "Values in site.toml's `[defaults]` apply to every report; front matter wins.",
        "",
        head,
        *_rows(ReportSettings, ""),
        "",
    ])
