"""End to end: content folder in, site out, as a user runs it."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
from facetrend import pictures, plots, render, train
from facetrend.build import BuildOptions, build
from facetrend.cli import main
from facetrend.errors import UserError
from markupsafe import escape

from .conftest import REPO, tree_bytes, write_report


def _build(content: Path, tmp: Path, name: str = "site", cache: str = "cache", **kw) -> Path:
    build(BuildOptions(content=content, out=tmp / name, cache=tmp / cache, **kw))
    return tmp / name


def _refs(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


@pytest.fixture(scope="module")
def demo_site(tmp_path_factory) -> Path:
    """The demo report built in smoke mode (the real path, 2 epochs)."""
    tmp = tmp_path_factory.mktemp("demo")
    assert main(["build", "--content", str(REPO / "content"), "--out", str(tmp / "site"),
                 "--cache", str(tmp / "cache"), "--smoke"]) == 0
    return tmp / "site"


def test_demo_pages_images_and_report_json_agree(demo_site: Path):
    doc = json.loads((demo_site / "demo" / "report.json").read_text())
    assert doc["slug"] == "demo" and doc["photos"]["total"] == 100 and doc["photos"]["faces"] == 100
    assert len(doc["units"]) == doc["model"]["config"]["hidden"][0] == 400
    assert len(doc["model"]["train_loss"]) == len(doc["model"]["test_loss"]) == 2
    face_ids = {f["id"] for f in doc["faces"]}
    assert len(face_ids) == 100
    assert all(set(u["matches"]) <= face_ids for u in doc["units"])
    assert all(u["matches"] for u in doc["units"] if u["prevalence"] > 0)
    assert doc["photos"]["people"] is None  # the LFW subset does not say whose faces they are
    assert sorted(u["rank"] for u in doc["units"]) == list(range(1, 401))
    assert all(str(u) in doc["captions"] for u in doc["featured"])
    html = (demo_site / "demo" / "index.html").read_text()
    for section in ("The data", "The method", "Every hidden unit", "Featured looks", "What these faces share",
                    "Conclusions", "Technical notes"):
        assert section in html
    assert "2015" in html  # the author's narrative, rendered from Markdown
    featured = [v for v in doc["looks"] if v["featured"]]
    assert doc["featured"] == [v["unit"] for v in featured]
    for look in featured:
        assert f'id="look-{look["rank"]}"' in html and str(escape(look["caption"])) in html
        assert doc["captions"][str(look["unit"])]["text"] == look["caption"]


def test_every_link_and_image_is_relative_and_exists(demo_site: Path):
    for page in (demo_site / "index.html", demo_site / "demo" / "index.html"):
        for ref in _refs(page.read_text()):
            if ref.startswith("data:"):  # inline, e.g. the empty favicon
                continue
            assert not ref.startswith(("/", "http:", "https:", "file:")), ref  # works under any prefix
            target = ref.split("#")[0]
            if target:
                assert (page.parent / target).resolve().is_file(), f"{page}: {ref}"


def test_index_lists_the_report(demo_site: Path):
    html = (demo_site / "index.html").read_text()
    assert 'href="demo/index.html"' in html and "Demo: 100 faces" in html


def test_second_build_does_not_train_and_records_it(small_content: Path, tmp_path: Path, monkeypatch):
    _build(small_content, tmp_path)
    first = json.loads((tmp_path / "cache" / "last-build.json").read_text())["reports"]["small"]

    def no_training(*args, **kwargs):
        raise AssertionError("the second build trained")

    monkeypatch.setattr(train, "fit", no_training)
    index = small_content / "small" / "index.md"
    index.write_text(index.read_text() + "\nA new paragraph: the page is rebuilt, the model is not.\n")
    _build(small_content, tmp_path)
    second = json.loads((tmp_path / "cache" / "last-build.json").read_text())["reports"]["small"]
    assert first["cached"] == {"faces": False, "model": False, "baselines": False}
    assert second["cached"] == {"faces": True, "model": True, "baselines": True}
    assert set(second["timings"]) >= {"collect", "faces", "model", "rank", "match", "describe", "render"}
    assert "cached" not in json.loads((tmp_path / "site" / "small" / "report.json").read_text())["model"]


def test_two_builds_of_the_same_input_are_byte_identical(small_content: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    a = tree_bytes(_build(small_content, tmp_path, "a", "cache-a"))
    b = tree_bytes(_build(small_content, tmp_path, "b", "cache-b"))  # trained again, from scratch
    c = tree_bytes(_build(small_content, tmp_path, "c", "cache-a"))  # warm: everything from cache-a
    assert a == b == c
    assert b"2026-01-01" in a["index.html"]
    assert str(tmp_path).encode() not in b"".join(a.values())  # no paths of the build machine
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "a").rglob("*")}
    result = build(BuildOptions(content=small_content, out=tmp_path / "a", cache=tmp_path / "cache-a"))
    assert not result.written and not result.reports  # nothing changed: nothing computed, nothing rewritten
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "a").rglob("*")} == before


def test_a_site_kept_across_a_new_build_date_is_the_site_built_afresh_that_day(small_content: Path, tmp_path: Path,
                                                                                 monkeypatch):
    """The Pages workflow dates each build by its last commit: the report's pages stay as they were (nothing
    they show changed), the front takes the new date, and the whole is what a cold build that day writes."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")  # 2026-01-01
    _build(small_content, tmp_path, "a", "cache-a")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1798761600")  # 2027-01-01
    warm = build(BuildOptions(content=small_content, out=tmp_path / "a", cache=tmp_path / "cache-a"))
    assert warm.written and warm.reports == []  # the front written again; the report kept, not computed
    cold = tree_bytes(_build(small_content, tmp_path, "b", "cache-b"))
    assert tree_bytes(tmp_path / "a") == cold
    assert b"2027-01-01" in cold["index.html"] and b"2026-01-01" not in b"".join(cold.values())


def test_a_changed_photo_retrains(small_content: Path, tmp_path: Path):
    _build(small_content, tmp_path)
    photo = next((small_content / "small" / "photos").rglob("*.pgm"))
    pixels = cv2.imread(str(photo), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(photo), pixels[:, ::-1].copy())  # same file name, different pixels (a negative is no face now)
    _build(small_content, tmp_path)
    record = json.loads((tmp_path / "cache" / "last-build.json").read_text())["reports"]["small"]
    assert record["cached"] == {"faces": False, "model": False, "baselines": False}
    doc = json.loads((tmp_path / "site" / "small" / "report.json").read_text())
    assert doc["photos"]["faces"] == 30 and not doc["photos"]["skipped"]


def test_only_the_asked_report_is_built_and_the_others_stay(small_content: Path, tmp_path: Path):
    shutil.copytree(small_content / "small", small_content / "other")
    _build(small_content, tmp_path)
    before = (tmp_path / "site" / "other" / "index.html").read_bytes()
    shutil.rmtree(small_content / "other" / "photos")  # would fail if it were rebuilt
    _build(small_content, tmp_path, report="small")
    assert (tmp_path / "site" / "other" / "index.html").read_bytes() == before
    index = (tmp_path / "site" / "index.html").read_text()
    assert 'href="other/index.html"' in index and 'href="small/index.html"' in index


def test_a_failed_build_leaves_the_previous_site_untouched(small_content: Path, tmp_path: Path, monkeypatch):
    site = _build(small_content, tmp_path)
    before = tree_bytes(site)

    def broken(*args, **kwargs):
        raise RuntimeError("crash while rendering")

    monkeypatch.setattr(pictures.EncodedImages, "encode", broken)
    with pytest.raises(RuntimeError):
        _build(small_content, tmp_path, retrain=True)
    assert tree_bytes(site) == before
    monkeypatch.undo()

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(render, "_swap", disk_full)  # fails after the new tree was written
    with pytest.raises(UserError, match="No space left on device.*previous site is unchanged"):
        _build(small_content, tmp_path, retrain=True)
    assert tree_bytes(site) == before
    left = sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock"))  # the build's lock file
    assert left == ["cache", "content", "site"]  # no temp folders left


def test_the_output_folder_is_never_something_else(small_content: Path, tmp_path: Path):
    precious = tmp_path / "notes"
    precious.mkdir()
    (precious / "thesis.txt").write_text("years of work")
    for out in (precious, tmp_path, small_content, small_content / "small"):
        with pytest.raises(UserError, match="--out"):
            build(BuildOptions(content=small_content, out=out, cache=tmp_path / "cache"))
    with pytest.raises(UserError, match="holds"):
        build(BuildOptions(content=small_content, out=tmp_path / "site", cache=tmp_path / "site" / "cache"))
    assert (precious / "thesis.txt").read_text() == "years of work"
    assert (small_content / "small" / "index.md").exists()
    _build(small_content, tmp_path)
    _build(small_content, tmp_path)  # an earlier site is replaced


def test_an_unreadable_earlier_report_is_built_again(small_content: Path, tmp_path: Path, caplog):
    shutil.copytree(small_content / "small", small_content / "other")
    _build(small_content, tmp_path)
    (tmp_path / "site" / "other" / "report.json").write_text("{broken")
    _build(small_content, tmp_path, report="small")
    assert json.loads((tmp_path / "site" / "other" / "report.json").read_text())["slug"] == "other"
    assert 'href="other/index.html"' in (tmp_path / "site" / "index.html").read_text()
    assert "unreadable" in caplog.text


def test_author_captions_replace_generated_ones(small_content: Path, tmp_path: Path):
    index = small_content / "small" / "index.md"
    index.write_text(index.read_text().replace("featured: 2", "featured: 2\ncaptions:\n  3: 'Parted <b>left</b>'"))
    site = _build(small_content, tmp_path)
    doc = json.loads((site / "small" / "report.json").read_text())
    assert doc["captions"]["3"] == {**doc["captions"]["3"], "text": "Parted <b>left</b>", "generated": False}
    assert "Parted &lt;b&gt;left&lt;/b&gt;" in (site / "small" / "index.html").read_text()  # autoescaped


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "facetrend", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_bad_setting_exits_2_with_the_message_and_no_traceback(small_content: Path, tmp_path: Path):
    _build(small_content, tmp_path)
    before = tree_bytes(tmp_path / "site")
    index = small_content / "small" / "index.md"
    index.write_text(index.read_text().replace("epochs: 3", "epocs: 3"))
    result = _cli("build", "--content", str(small_content), "--out", str(tmp_path / "site"),
                  "--cache", str(tmp_path / "cache"), cwd=tmp_path)
    assert result.returncode == 2
    assert "small/index.md" in result.stderr and "model.epocs" in result.stderr and "model.epochs" in result.stderr
    assert "Traceback" not in result.stderr
    assert tree_bytes(tmp_path / "site") == before


def test_missing_photos_folder_and_missing_content_exit_2(tmp_path: Path):
    write_report(tmp_path / "content", "2026", "title: Contest")
    result = _cli("build", cwd=tmp_path)
    assert result.returncode == 2 and "setting `photos`" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "site").exists()
    result = _cli("build", "--content", "nowhere", cwd=tmp_path)
    assert result.returncode == 2 and "nowhere" in result.stderr


def test_new_scaffolds_a_report_that_loads_with_the_defaults(tmp_path: Path):
    assert main(["new", "2027", "--content", str(tmp_path / "content")]) == 0
    assert (tmp_path / "content" / "2027" / "photos").is_dir()
    from facetrend import config

    report = config.load_report(tmp_path / "content" / "2027", config.SiteSettings())
    assert report.settings.title == "2027" and report.settings.model.hidden == [400]
    assert report.settings == config.ReportSettings(title="2027", date=report.settings.date)  # the defaults
    assert len(report.settings.date) == 10 and "Write the story" in report.narrative
    assert main(["new", "2027", "--content", str(tmp_path / "content")]) == 2


def test_help_lists_the_commands():
    result = _cli("--help", cwd=REPO)
    for command in ("build", "serve", "new", "settings"):
        assert command in result.stdout
    build_help = _cli("build", "--help", cwd=REPO).stdout
    for flag in ("--content", "--out", "--cache", "--report", "--retrain"):
        assert flag in build_help


def test_serve_shows_the_built_site(demo_site: Path):
    import socket
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "facetrend", "serve", "--out", str(demo_site),
                               "--port", str(port)], stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/demo/index.html", timeout=2) as r:
                    assert r.status == 200 and b"Featured looks" in r.read()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("server did not answer")
    finally:
        server.terminate()
        server.wait(10)


def test_an_edited_narrative_reuses_every_picture_and_chart(small_content: Path, tmp_path: Path, monkeypatch):
    site = _build(small_content, tmp_path)
    before = tree_bytes(site)
    index = small_content / "small" / "index.md"
    index.write_text(index.read_text() + "\nOne more line.\n")
    monkeypatch.setattr(plots, "encode", lambda *a: pytest.fail("a picture was encoded again"))
    monkeypatch.setattr(plots, "_figure", lambda *a: pytest.fail("a chart was drawn again"))
    after = tree_bytes(_build(small_content, tmp_path))
    pictures = [k for k in before if k.endswith((".png", ".webp"))]
    assert len(pictures) > 40 and all(after[k] == before[k] for k in pictures)
    (tmp_path / "cache" / "images" / "small.zip").write_bytes(b"not a zip")
    monkeypatch.undo()
    index.write_text(index.read_text() + "\nAnd another.\n")
    assert tree_bytes(_build(small_content, tmp_path)).keys() == after.keys()  # an unreadable cache: encoded again


def test_a_cache_folder_blocked_by_a_file_costs_time_not_the_build(small_content: Path, tmp_path: Path):
    (tmp_path / "cache").mkdir()
    for name in ("images", "baselines", "model"):
        (tmp_path / "cache" / name).write_text("a file where a folder should be")
    site = _build(small_content, tmp_path)
    assert (site / "small" / "index.html").is_file()
    assert (tmp_path / "cache" / "last-build.json").is_file()


def test_report_json_says_what_alignment_removed(tmp_path: Path):
    """A detected face carries its tilt (degrees), its size in the photo and where it was; a crop used whole none."""
    from skimage import data

    content = tmp_path / "content"
    folder = write_report(content, "one", "faces:\n  size: 16\nmodel:\n  hidden: [4]\n  epochs: 1\n")
    (folder / "photos" / "eileen").mkdir(parents=True)
    cv2.imwrite(str(folder / "photos" / "eileen" / "1.png"), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(folder / "photos" / "eileen" / "2.png"), cv2.resize(data.camera(), (120, 120)))
    build(BuildOptions(content=content, out=tmp_path / "site", cache=tmp_path / "cache"))
    doc = json.loads((tmp_path / "site" / "one" / "report.json").read_text())
    detected = [f for f in doc["faces"] if f["photo"].endswith("1.png")]
    assert len(detected) == 1
    face = detected[0]
    assert isinstance(face["tilt"], float) and abs(face["tilt"]) < 30
    assert 0 < face["face_size"] <= 1 and len(face["box"]) == 4 and face["other_faces"] == 0
