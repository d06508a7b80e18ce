"""The site's Atom feed and sitemap.xml, part of the render stage (bytes only, render writes them).

With an absolute `base_url` (https://..., in site.toml or `build --base-url`)
every URL in both is that address joined with the page's path. With a relative
one (the default "/"), the site's address is not known: the sitemap format
requires absolute URLs, so no sitemap is written (the build says so), and the
feed's links are relative to feed.xml (Atom allows that) while its ids, which
must be absolute, are stable `urn:uuid:` names made from the site title and the
page. A report's date is its front-matter `date` when that is an ISO date
(YYYY-MM-DD); otherwise the build date from SOURCE_DATE_EPOCH; otherwise
1970-01-01, so the same input always gives the same bytes.
"""

from __future__ import annotations

import datetime as dt
import uuid
import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

from .config import SiteSettings

ATOM = "http://www.w3.org/2005/Atom"
SITEMAP = "http://www.sitemaps.org/schemas/sitemap/0.9"
EPOCH = "1970-01-01T00:00:00Z"


def absolute(site: SiteSettings, path: str) -> str:
    """``path`` (relative to the site root) under the site's base URL."""
    return site.base_url.rstrip("/") + "/" + path.lstrip("/")


def is_absolute(site: SiteSettings) -> bool:
    """Whether the base URL is a whole web address (scheme and host), so URLs made from it are absolute."""
    parts = urlsplit(site.base_url)
    return bool(parts.scheme and parts.netloc)


def _link(site: SiteSettings, path: str) -> str:
    """A URL in the feed: absolute under an absolute base URL, else relative to feed.xml (at the site root)."""
    return absolute(site, path) if is_absolute(site) else path.lstrip("/") or "./"


def _id(site: SiteSettings, path: str) -> str:
    """An entry's id: its absolute URL, or without one a stable urn:uuid from the site title and the path."""
    if is_absolute(site):
        return absolute(site, path)
    return uuid.uuid5(uuid.NAMESPACE_URL, f"facetrend:{site.title}/{path}").urn


def timestamp(date: str, build_date: str) -> str:
    """An RFC 3339 time for a report: its own date, else the build date, else the epoch."""
    for candidate in (date, build_date):
        try:
            return dt.date.fromisoformat(candidate.strip()).isoformat() + "T00:00:00Z"
        except ValueError:
            continue
    return EPOCH


def atom_feed(site: SiteSettings, reports: list[dict], build_date: str) -> bytes:
    """One entry per report (its report.json document), newest first."""
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed")
    entries = sorted(((timestamp(r.get("date", ""), build_date), r) for r in reports),
                     key=lambda e: (e[0], e[1]["slug"]), reverse=True)
    _text(feed, "title", site.title)
    if site.description:
        _text(feed, "subtitle", site.description)
    _text(feed, "id", _id(site, ""))
    _text(feed, "updated", entries[0][0] if entries else timestamp("", build_date))
    ET.SubElement(feed, f"{{{ATOM}}}link", href=_link(site, "feed.xml"), rel="self")
    ET.SubElement(feed, f"{{{ATOM}}}link", href=_link(site, "index.html"))
    _text(ET.SubElement(feed, f"{{{ATOM}}}author"), "name", site.author or site.title)
    for updated, report in entries:
        entry = ET.SubElement(feed, f"{{{ATOM}}}entry")
        path = f"{report['slug']}/index.html"
        _text(entry, "title", report["title"])
        _text(entry, "id", _id(site, path))
        _text(entry, "updated", updated)
        ET.SubElement(entry, f"{{{ATOM}}}link", href=_link(site, path))
        _text(entry, "summary", report.get("description") or _summary(report))
    return _xml(feed)


def _summary(report: dict) -> str:
    shared = [f"{v['share_words']}: {v['caption']}" for v in report.get("looks", []) if v.get("featured")]
    found = " ".join(shared) if shared else "No look stands out beyond chance."
    return f"{report['photos']['faces']} faces. {found}"


def sitemap(site: SiteSettings, pages: list[str]) -> bytes | None:
    """Every HTML page of the site, by path relative to its root; None when the base URL is relative (the
    sitemap format requires absolute URLs)."""
    if not is_absolute(site):
        return None
    ET.register_namespace("", SITEMAP)
    urlset = ET.Element(f"{{{SITEMAP}}}urlset")
    for page in sorted(pages):
        _text(ET.SubElement(urlset, f"{{{SITEMAP}}}url"), "loc", absolute(site, page), SITEMAP)
    return _xml(urlset)


def _text(parent: ET.Element, tag: str, text: str, ns: str = ATOM) -> None:
    ET.SubElement(parent, f"{{{ns}}}{tag}").text = text


def _xml(root: ET.Element) -> bytes:
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
