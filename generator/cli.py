"""The `facetrend` command. Each subcommand only loads settings and calls the stages."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from .errors import UserError, printable

log = logging.getLogger("facetrend")
SKIPPED_SHOWN = 20


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(levelname)s: %(message)s" if args.verbose else "%(message)s",
                        stream=sys.stderr)
    try:
        return args.command(args)
    except UserError as exc:
        print(f"error: {printable(str(exc))}", file=sys.stderr)  # bounded, and no terminal escapes
        return UserError.exit_code
    except KeyboardInterrupt:
        print("interrupted: the previous site is unchanged", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="facetrend",
        description="Turn a year's portrait photos into a static report of what the faces have in common.",
    )
    parser.add_argument("--version", action="version", version=f"facetrend {__version__}")
    _add_output_flags(parser, False)
    common = argparse.ArgumentParser(add_help=False)
    _add_output_flags(common, argparse.SUPPRESS)
    sub = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    b = sub.add_parser("build", parents=[common], help="build the site from the content folder",
                       description="Build every report in the content folder into the output folder. "
                       "Exit 0 on success (bad photos are skipped and listed), 2 on a user error.")
    b.add_argument("--content", type=Path, default=Path("content"), help="content folder (default: content)")
    b.add_argument("--out", type=Path, default=Path("site"), help="output folder (default: site)")
    b.add_argument("--cache", type=Path, default=Path(".facetrend-cache"),
                   help="cache of crops, models, PCA/NMF fits and encoded pictures (default: .facetrend-cache)")
    b.add_argument("--report", metavar="SLUG", help="build only this report; keep the others' pages")
    b.add_argument("--retrain", action="store_true",
                   help="train, fit and draw again and rebuild the pages built (every page, or with --report that "
                        "report's only), even if cache and site match the input")
    b.add_argument("--smoke", action="store_true", help="at most 2 epochs: a fast preview of the real path")
    b.add_argument("--jobs", type=_jobs, default=0, metavar="N",
                   help="threads or processes that crop faces (default 0: one per core)")
    b.add_argument("--fetch", action="store_true", help="first download the photo URLs of people.csv files")
    b.add_argument("--base-url", metavar="URL",
                   help="where the site will be published, overriding site.toml (feed and sitemap URLs)")
    b.set_defaults(command=_build)

    s = sub.add_parser("serve", parents=[common], help="serve the built site at http://127.0.0.1:8000")
    s.add_argument("--out", type=Path, default=Path("site"), help="folder to serve (default: site)")
    s.add_argument("--port", type=_port, default=8000, help="port (default: 8000)")
    s.add_argument("--bind", default="127.0.0.1", help="address (default: 127.0.0.1)")
    s.set_defaults(command=_serve)

    f = sub.add_parser("fetch", parents=[common], help="download the photo URLs listed in people.csv",
                       description="Download every photo_url of each report's people.csv into its photos "
                       "folder: cached (nothing twice), robots.txt obeyed, one request a second per host.")
    f.add_argument("--content", type=Path, default=Path("content"), help="content folder (default: content)")
    f.add_argument("--cache", type=Path, default=Path(".facetrend-cache"),
                   help="where what was downloaded is remembered (default: .facetrend-cache)")
    f.add_argument("--report", metavar="SLUG", help="only this report")
    f.add_argument("--rate", type=float, default=1.0, help="requests per second per host (default: 1)")
    f.set_defaults(command=_fetch)

    r = sub.add_parser("review", parents=[common], help="a local page of every face crop and every skipped photo",
                       description="Write a review page (not published) showing every crop with its id and "
                       "photo, and every photo without a face, to decide what to `exclude:`.")
    r.add_argument("--content", type=Path, default=Path("content"), help="content folder (default: content)")
    r.add_argument("--cache", type=Path, default=Path(".facetrend-cache"), help="cache (default: .facetrend-cache)")
    r.add_argument("--report", metavar="SLUG", help="only this report")
    r.add_argument("--out", type=Path, default=None, help="folder for the pages (default: <cache>/review)")
    r.set_defaults(command=_review)

    n = sub.add_parser("new", parents=[common], help="scaffold a new report: content/SLUG/index.md and photos/")
    n.add_argument("slug", metavar="SLUG", help="the report's folder name and URL, e.g. 2027")
    n.add_argument("--content", type=Path, default=Path("content"), help="content folder (default: content)")
    n.set_defaults(command=_new)

    t = sub.add_parser("settings", help="print every setting with its default (docs/settings.md)")
    t.set_defaults(command=_settings)
    return parser


def _add_output_flags(parser: argparse.ArgumentParser, default: object) -> None:
    """-q and -v, accepted before or after the command (the command's copy must not reset them)."""
    parser.add_argument("-q", "--quiet", action="store_true", default=default, help="only warnings and errors")
    parser.add_argument("-v", "--verbose", action="store_true", default=default, help="show log levels")


def _port(text: str) -> int:
    port = int(text) if text.isdigit() else -1
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number from 1 to 65535")
    return port


def _jobs(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of processes (0: one per core)")
    return int(text)


def _build(args: argparse.Namespace) -> int:
    from .build import BuildOptions, build

    start = time.perf_counter()
    if args.fetch:
        _fetch(argparse.Namespace(content=args.content, cache=args.cache, report=args.report, rate=1.0))
    options = BuildOptions(args.content, args.out, args.cache, args.report, args.retrain, args.smoke, args.jobs,
                           args.base_url)
    result = build(options)
    for doc in result.reports:
        _summarise(doc, result.record["reports"][doc["slug"]])
    if result.written:
        log.info("built %s in %.1f s", args.out, time.perf_counter() - start)
    else:
        log.info("nothing changed; %s is up to date (%.1f s)", args.out, time.perf_counter() - start)
    return 0


def _summarise(doc: dict, record: dict) -> None:
    photos, model = doc["photos"], doc["model"]
    cached = record.get("cached", {}).get("model", False)  # a fact about this build: last-build.json, not the site
    how = "model loaded from cache" if cached else f"model trained {len(model['train_loss'])} epochs"
    featured = sum(1 for v in doc.get("looks", []) if v.get("featured"))
    looks = f"{featured} featured {'look' if featured == 1 else 'looks'}" if featured else \
        "no look stands out beyond chance"
    log.info("%s: %d faces from %d files, %d skipped; %s; %s",
             doc["slug"], photos["faces"], photos["total"], len(photos["skipped"]), how, looks)
    for item in photos["skipped"][:SKIPPED_SHOWN]:
        log.warning("  skipped %s: %s", item["path"], item["reason"])
    if len(photos["skipped"]) > SKIPPED_SHOWN:
        log.warning("  ... and %d more (report.json lists all)", len(photos["skipped"]) - SKIPPED_SHOWN)


def _fetch(args: argparse.Namespace) -> int:
    from .fetch import fetch_reports

    for slug, results in fetch_reports(args.content, args.cache, args.report, args.rate):
        counts = {k: sum(r.status == k for r in results) for k in ("downloaded", "unchanged", "skipped")}
        log.info("%s: %d downloaded, %d unchanged, %d skipped", slug, *counts.values())
        for r in results:
            if r.status == "skipped":
                log.warning("  skipped %s (%s): %s", r.url, r.person, r.reason)
    return 0


def _review(args: argparse.Namespace) -> int:
    from .review import write_review

    for path in write_review(args.content, args.cache, args.report, args.out):
        log.info("review page: %s", path)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from .build import BuildOptions
    from .serve import serve

    # getattr: serve's --content, --cache, --smoke and --no-watch default to build's where the parser has none
    content, cache = getattr(args, "content", Path("content")), getattr(args, "cache", Path(".facetrend-cache"))
    watch, rebuild = not getattr(args, "no_watch", False), None
    if watch and content.is_dir():
        rebuild = BuildOptions(content, args.out, cache, smoke=getattr(args, "smoke", False))
    elif watch:
        log.info("no content folder %s here: serving %s without rebuilding on change", content, args.out)
    serve(args.out, args.bind, args.port, rebuild)
    return 0


def _new(args: argparse.Namespace) -> int:
    from .scaffold import new_report

    path = new_report(args.content, args.slug)
    log.info("created %s; put photos in %s/<person>/, replace the placeholder story and run `facetrend build`",
             path, path.parent / "photos")
    log.info("it counts as a year on the trends page; `trends: false` in its front matter leaves it out "
             "(every setting: `facetrend settings`)")
    return 0


def _settings(args: argparse.Namespace) -> int:
    from .config import settings_reference

    sys.stdout.write(settings_reference())
    return 0


if __name__ == "__main__":
    sys.exit(main())
