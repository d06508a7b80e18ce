from pathlib import Path

import numpy as np
import pytest
from facetrend import collect, config
from facetrend.config import SiteSettings
from facetrend.errors import UserError

from .conftest import write_report


def _report(content: Path, front: str = "") -> config.Report:
    write_report(content, "r", front)
    return config.load_report(content / "r", SiteSettings())


def test_folders_give_people_sorted_and_other_files_are_listed(tmp_path: Path):
    photos = tmp_path / "r" / "photos"
    names = ["山田花子/a.jpg", "bob/2019/b.PNG", "bob/a.pgm", "loose.jpg", "notes.txt", ".hidden/x.jpg",
             "bob/.DS_Store"]
    for rel in names:
        (photos / rel).parent.mkdir(parents=True, exist_ok=True)
        (photos / rel).write_bytes(b"x")
    found = collect.collect(_report(tmp_path))
    assert [(p.source, p.person) for p in found.photos] == [
        ("bob/2019/b.PNG", "bob"), ("bob/a.pgm", "bob"), ("loose.jpg", None), ("山田花子/a.jpg", "山田花子")]
    assert [(s.path, s.reason) for s in found.skipped] == [
        ("", "not a photo (unsupported file type); its name is not published")]  # notes.txt
    assert all(not Path(p.source).is_absolute() for p in found.photos)


def test_missing_photos_folder_is_a_user_error_naming_the_setting(tmp_path: Path):
    with pytest.raises(UserError, match=r"index.md: setting `photos` points to 'faces'.*Fix"):
        collect.collect(_report(tmp_path, "photos: faces"))


def test_builtin_lfw_subset_gives_the_100_faces():
    found = collect.collect(_report_builtin())
    assert len(found.photos) == 100
    assert found.photos[0].source == "builtin:lfw-subset/000"
    assert found.photos[0].pixels.dtype == np.uint8 and found.photos[0].pixels.shape == (25, 25)
    assert len({p.content_hash() for p in found.photos}) == 100


def _report_builtin() -> config.Report:
    return config.Report("demo", Path("."), Path("index.md"), config.ReportSettings(photos="builtin:lfw-subset"), "")


def test_collecting_does_not_import_requests():
    """Only `facetrend fetch` downloads: collecting (the build, review) must not pull in requests."""
    import subprocess
    import sys

    code = "import facetrend.collect, sys; assert 'requests' not in sys.modules, 'collect imported requests'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_collect_and_fetch_agree_on_a_person_folder():
    from facetrend import fetch

    assert fetch.safe_person is collect.safe_person
    assert collect.safe_person("../a/b") == "_a_b" and collect.safe_person("..") == "unknown"
