import dataclasses
from pathlib import Path

import pytest
from facetrend import config
from facetrend.config import ReportSettings, SiteSettings
from facetrend.errors import UserError

from .conftest import REPO, write_report


def test_defaults_follow_the_original_post():
    s = ReportSettings()
    assert s.model.hidden == [400]
    assert s.model.activation == "relu"
    assert s.model.epochs == 30
    assert s.model.batch_size == 100
    assert s.faces.size == 64
    assert s.featured == 3


def test_front_matter_is_read_and_merged_with_site_defaults(tmp_path: Path):
    write_report(tmp_path, "2026", "title: Contest 2026\nmodel:\n  epochs: 5\n", "Hello **there**")
    site = SiteSettings(defaults={"featured": 5, "model": {"hidden": [50], "epochs": 9}})
    report = config.load_report(tmp_path / "2026", site)
    assert report.settings.title == "Contest 2026"
    assert report.settings.featured == 5
    assert report.settings.model.hidden == [50]
    assert report.settings.model.epochs == 5  # front matter wins
    assert report.narrative == "Hello **there**"


def test_numbers_yaml_reads_as_text_are_accepted(tmp_path: Path):
    write_report(tmp_path, "r", "model:\n  lr: 1e-4\n  weight_decay: 5e-3\n")
    model = config.load_report(tmp_path / "r", SiteSettings()).settings.model
    assert model.lr == 0.0001 and model.weight_decay == 0.005


def test_title_defaults_to_the_folder_name_and_date_accepts_yaml_dates(tmp_path: Path):
    write_report(tmp_path, "2025", "date: 2025-11-01\n")
    report = config.load_report(tmp_path / "2025", SiteSettings())
    assert report.settings.title == "2025"
    assert report.settings.date == "2025-11-01"


@pytest.mark.parametrize(
    ("front", "expected"),
    [
        ("model:\n  activaton: relu\n", ["model.activaton", "did you mean `model.activation`"]),
        ("model:\n  activation: tanh\n", ["model.activation", "relu, sigmoid"]),
        ("model:\n  epochs: many\n", ["model.epochs", "whole number"]),
        ("model:\n  dropout: 1.5\n", ["model.dropout", "below 1.0"]),
        ("model:\n  hidden: []\n", ["model.hidden", "at least one"]),
        ("featured: -1\n", ["featured", ">= 0"]),
        ("faces: 64\n", ["faces", "mapping"]),
        ("photos: builtin:nope\n", ["photos", "builtin:lfw-subset"]),
        ("model:\n  seed: 99999999999999999999\n", ["model.seed", "<= 4294967295"]),
        ("model:\n  lr: fast\n", ["model.lr", "a number"]),
        ("captions:\n  400: too far\n", ["captions.400", "0 to 399"]),
        ("captions:\n  -1: negative\n", ["captions.-1", "0 to 399"]),
    ],
)
def test_a_bad_setting_names_the_file_the_key_and_the_fix(tmp_path: Path, front: str, expected: list[str]):
    write_report(tmp_path, "r", front)
    with pytest.raises(UserError) as err:
        config.load_report(tmp_path / "r", SiteSettings())
    message = str(err.value)
    assert "index.md" in message and "Fix" in message
    for part in expected:
        assert part in message


def test_broken_yaml_and_toml_are_user_errors(tmp_path: Path):
    write_report(tmp_path, "r", "title: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML"):
        config.load_report(tmp_path / "r", SiteSettings())
    (tmp_path / "site.toml").write_text("title = \n")
    with pytest.raises(UserError, match="site.toml.*not valid TOML"):
        config.load_site(tmp_path)


def test_bad_report_defaults_in_site_toml_are_caught(tmp_path: Path):
    (tmp_path / "site.toml").write_text("[defaults]\nfeatured = 'three'\n")
    with pytest.raises(UserError, match="site.toml.*defaults.featured"):
        config.load_site(tmp_path)


def test_missing_content_folder_and_unknown_report(tmp_path: Path):
    with pytest.raises(UserError, match="does not exist"):
        config.load_site(tmp_path / "nope")
    with pytest.raises(UserError, match="no report 'x'"):
        config.find_reports(tmp_path, SiteSettings(), only="x")


def test_smoke_override_caps_epochs(tmp_path: Path):
    write_report(tmp_path, "r", "model:\n  epochs: 40\n")
    report = config.apply_overrides(config.load_report(tmp_path / "r", SiteSettings()), smoke=True)
    assert report.settings.model.epochs == 2


def test_docs_settings_md_matches_the_schema():
    """docs/settings.md is generated: `facetrend settings > docs/settings.md` regenerates it."""
    assert (REPO / "docs" / "settings.md").read_text(encoding="utf-8") == config.settings_reference()


def test_the_original_2015_preset_and_own_keys_win(tmp_path: Path):
    write_report(tmp_path, "r", "preset: original-2015\nmodel:\n  epochs: 5\n")
    s = config.load_report(tmp_path / "r", SiteSettings()).settings
    assert (s.model.hidden, s.model.dropout, s.model.batch_size, s.model.center) == ([400], 0.5, 100, False)
    assert s.model.epochs == 5 and s.faces.equalize == "none"
    write_report(tmp_path, "bad", "preset: 2016\n")
    with pytest.raises(UserError, match="preset.*original-2015"):
        config.load_report(tmp_path / "bad", SiteSettings())


def test_a_bare_yes_or_no_is_read_as_the_word(tmp_path: Path):
    """YAML reads `crops: yes` as true; the setting takes it as the word the user wrote."""
    content = tmp_path / "content"
    write_report(content, "r", "faces:\n  crops: yes\n")
    site = config.load_site(content)
    assert config.find_reports(content, site)[0].settings.faces.crops == "yes"
    write_report(content, "r", "faces:\n  crops: no\n")
    assert config.find_reports(content, site)[0].settings.faces.crops == "no"


@pytest.mark.parametrize(("front", "expected"), [("", True), ("trends: true\n", True), ("trends: no\n", False),
                                                 ("trends: yes\n", True), ("trends: off\n", False)])
def test_trends_says_whether_a_report_is_a_year_and_takes_a_bare_yes_or_no(tmp_path: Path, front: str,
                                                                            expected: bool):
    write_report(tmp_path, "r", front + "title: R\n")
    assert config.load_report(tmp_path / "r", SiteSettings()).settings.trends is expected


def test_a_trends_value_that_is_not_true_or_false_is_named(tmp_path: Path):
    write_report(tmp_path, "r", "trends: sometimes\n")
    with pytest.raises(UserError, match=r"index.md: setting `trends` is 'sometimes', not true or false\. Fix"):
        config.load_report(tmp_path / "r", SiteSettings())
    (tmp_path / "site.toml").write_text("[defaults]\ntrends = 'no'\n")
    with pytest.raises(UserError, match="site.toml: setting `defaults.trends`"):
        config.load_site(tmp_path)


def test_trend_reports_are_the_years_in_order_of_date_then_name(tmp_path: Path):
    for slug, front in [("a-demo", "date: 2020-01-01\ntrends: false"), ("b", "date: 2025-06-01"),
                        ("a", "date: 2025-06-01"), ("old", "date: 2024-12-31"), ("late", "date: 2026-01-01")]:
        write_report(tmp_path / "content", slug, front)
    reports = config.find_reports(tmp_path / "content", SiteSettings())
    assert [r.slug for r in reports] == ["a", "a-demo", "b", "late", "old"]  # find_reports: by folder name
    assert [r.slug for r in config.trend_reports(reports)] == ["old", "a", "b", "late"]
    assert config.trend_reports([r for r in reports if r.slug == "a-demo"]) == []
    defaults = SiteSettings(defaults={"trends": False})
    assert config.trend_reports(config.find_reports(tmp_path / "content", defaults)) == []


def test_the_demo_is_not_a_year_of_the_trends():
    content = REPO / "content"
    demo = next(r for r in config.find_reports(content, config.load_site(content)) if r.slug == "demo")
    assert demo.settings.trends is False and config.trend_reports([demo]) == []


def test_a_report_with_the_placeholder_story_warns_naming_its_file(tmp_path: Path, caplog):
    write_report(tmp_path, "r", "title: R\n", f"{config.PLACEHOLDER_STORY}, in Markdown.\n")
    write_report(tmp_path, "mine", "title: Mine\n", "Our own story.\n")
    with caplog.at_level("WARNING", logger="facetrend.config"):
        config.load_report(tmp_path / "mine", SiteSettings())
        assert caplog.records == []
        config.load_report(tmp_path / "r", SiteSettings())
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert str(tmp_path / "r" / "index.md") in message and "placeholder" in message and "Fix" in message


def test_the_optimiser_settings_name_the_optimiser_training_uses():
    import inspect

    from facetrend import train

    assert "torch.optim.AdamW(" in inspect.getsource(train._optimizer)
    docs = {f.name: f.metadata["doc"] for f in dataclasses.fields(config.ModelSettings)}
    assert docs["lr"].startswith("AdamW learning rate") and "AdamW" in docs["weight_decay"]
    assert "Adam learning rate" not in config.settings_reference().replace("AdamW learning rate", "")


@pytest.mark.parametrize(("front", "expected"), [("", False), ("publish_skipped: true\n", True),
                                                 ("publish_skipped: no\n", False), ("publish_skipped: yes\n", True)])
def test_publish_skipped_is_off_unless_asked(tmp_path: Path, front: str, expected: bool):
    write_report(tmp_path, "r", front + "title: R\n")
    assert config.load_report(tmp_path / "r", SiteSettings()).settings.publish_skipped is expected


def test_a_publish_skipped_value_that_is_not_true_or_false_is_named(tmp_path: Path):
    write_report(tmp_path, "r", "publish_skipped: names\n")
    with pytest.raises(UserError, match=r"setting `publish_skipped` is 'names', not true or false\. Fix"):
        config.load_report(tmp_path / "r", SiteSettings())
    assert "publish_skipped" in (REPO / "docs" / "settings.md").read_text(encoding="utf-8")
