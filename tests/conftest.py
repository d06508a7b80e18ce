"""Shared test helpers: small content folders made in tmp_path, and person folders of faces: the ORL faces from
../shared/data, or synthetic ones (tests/synthetic.py) where that is absent."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from .synthetic import write_people

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FACETREND_SHARED_DATA", REPO.parent / "shared" / "data"))
ATT = SHARED / "att_faces"


@pytest.fixture(scope="session")
def orl_faces() -> Path:
    """The real ORL faces (read-only): one folder per person, 92x112 PGM. Skips where ../shared/data is absent:
    only for the tests whose meaning needs real faces (detection, alignment, the larger planted checks)."""
    if not ATT.is_dir():
        pytest.skip(f"ORL faces not found at {ATT} (set FACETREND_SHARED_DATA)")
    return ATT


@pytest.fixture(scope="session")
def att_faces(tmp_path_factory) -> Path:
    """Person folders in ORL's layout (s1..s40, 1.pgm..10.pgm, 92x112 grey): the real ORL faces where
    ../shared/data has them, else synthetic faces (tests/synthetic.py) made once per session, so every test
    that only needs "photos of people" runs on every machine."""
    if ATT.is_dir():
        return ATT
    return write_people(tmp_path_factory.mktemp("synthetic_faces"))


def write_report(content: Path, slug: str, front: str, narrative: str = "Some *words*.\n") -> Path:
    """Write content/<slug>/index.md with the given YAML front matter; return the folder."""
    folder = content / slug
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "index.md").write_text(f"---\n{front.strip()}\n---\n{narrative}", encoding="utf-8")
    return folder


def copy_people(att: Path, dest: Path, people: int, per_person: int = 10) -> Path:
    """Copy the first ``people`` ORL persons (``per_person`` photos each) into dest/<person>/."""
    for person in sorted(p for p in att.iterdir() if p.is_dir())[:people]:
        (dest / person.name).mkdir(parents=True, exist_ok=True)
        for photo in sorted(person.glob("*.pgm"))[:per_person]:
            shutil.copy(photo, dest / person.name / photo.name)
    return dest


SMALL_MODEL = """
faces:
  size: 16
  crops: yes
model:
  hidden: [12]
  epochs: 3
  batch_size: 16
"""


@pytest.fixture
def small_content(tmp_path: Path, att_faces: Path) -> Path:
    """A content folder with one report `small`: 6 ORL people x 5 photos, a tiny fast model."""
    content = tmp_path / "content"
    folder = write_report(content, "small", "title: Small\nfeatured: 2\nmatches: 5\n" + SMALL_MODEL)
    copy_people(att_faces, folder / "photos", people=6, per_person=5)
    (content / "site.toml").write_text('title = "Test site"\n', encoding="utf-8")
    return content


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file under root, by relative path."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def noise_images(n: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size), dtype=np.uint8)


def two_years(root: Path, att: Path) -> Path:
    """A content folder with reports 2025 and 2026 (different ORL people), tiny models."""
    content = root / "content"
    people = sorted(p for p in att.iterdir() if p.is_dir())
    for year, group in (("2025", people[:4]), ("2026", people[4:9])):
        folder = write_report(content, year, f"title: Contest {year}\ndate: {year}-06-01\nfeatured: 2\n"
                              + SMALL_MODEL, f"Contestants of {year}.\n")
        for person in group:
            (folder / "photos" / person.name).mkdir(parents=True)
            for photo in sorted(person.glob("*.pgm"))[:5]:
                shutil.copy(photo, folder / "photos" / person.name / photo.name)
    (content / "site.toml").write_text(
        'title = "Beauty contest faces"\nbase_url = "https://example.github.io/faces/"\nlanguage = "ja"\n'
        '[trends]\nfeatured = 2\n[trends.faces]\nsize = 16\n[trends.model]\nhidden = [12]\nepochs = 3\n',
        encoding="utf-8")
    return content


def pytest_addoption(parser) -> None:
    parser.addoption("--regen-golden", action="store_true",
                     help="tests/test_golden.py writes tests/golden/ from this build instead of comparing")
