import datetime as dt

import pytest
from facetrend import config, scaffold
from facetrend.errors import UserError


def test_new_refuses_the_trends_pages_address(tmp_path):
    with pytest.raises(UserError, match=f"`{config.TRENDS_SLUG}`, the trends page"):
        scaffold.new_report(tmp_path, config.TRENDS_SLUG)
    assert not (tmp_path / config.TRENDS_SLUG).exists()
    assert scaffold.new_report(tmp_path, "2027").is_file()


TODAY = dt.date(2026, 12, 3)


@pytest.mark.parametrize(("slug", "date"), [("2024", "2024-01-01"), ("2031", "2031-01-01"),
                                            ("2026", "2026-12-03"), ("spring", "2026-12-03"),
                                            ("2024-spring", "2026-12-03"), ("0000", "2026-12-03")])
def test_a_report_named_after_a_year_is_dated_in_that_year(tmp_path, slug, date):
    index = scaffold.new_report(tmp_path, slug, today=TODAY)
    report = config.load_report(index.parent, config.SiteSettings())
    assert report.settings.date == date and report.settings.title == slug


def test_the_front_matter_is_short_and_points_to_every_setting(tmp_path):
    index = scaffold.new_report(tmp_path, "2024", today=TODAY)
    front, narrative = config.split_front_matter(index.read_text(encoding="utf-8"), index)
    assert list(front) == ["title", "date", "photos", "featured", "trends"]
    assert front["trends"] is True and front["photos"] == "photos" and front["featured"] == 3
    text = index.read_text(encoding="utf-8")
    assert "`facetrend settings`" in text and "false leaves it out" in text
    assert len(text.split("\n---\n")[0].splitlines()) < 30
    report = config.load_report(index.parent, config.SiteSettings())
    assert report.settings == config.ReportSettings(title="2024", date="2024-01-01")  # every other default


def test_a_new_report_warns_until_its_placeholder_story_is_replaced(tmp_path, caplog):
    index = scaffold.new_report(tmp_path, "2024", today=TODAY)
    with caplog.at_level("WARNING", logger="facetrend.config"):
        config.load_report(index.parent, config.SiteSettings())
    assert [str(index) in r.getMessage() and "placeholder" in r.getMessage() for r in caplog.records] == [True]
    caplog.clear()
    front = index.read_text(encoding="utf-8").split(scaffold.NARRATIVE)[0]
    index.write_text(front + "Our own story.\n", encoding="utf-8")
    with caplog.at_level("WARNING", logger="facetrend.config"):
        config.load_report(index.parent, config.SiteSettings())
    assert caplog.records == []
    index.write_text(front + scaffold.NARRATIVE.replace(config.PLACEHOLDER_STORY, "The faces of 2024."),
                     encoding="utf-8")  # the first sentence replaced, the rest of the placeholder left
    with caplog.at_level("WARNING", logger="facetrend.config"):
        config.load_report(index.parent, config.SiteSettings())
    assert [str(index) in r.getMessage() and "placeholder" in r.getMessage() for r in caplog.records] == [True]


def test_new_says_how_to_leave_the_report_out_of_the_trends(tmp_path, caplog):
    from facetrend.cli import main

    with caplog.at_level("INFO", logger="facetrend"):
        assert main(["new", "2024", "--content", str(tmp_path)]) == 0
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "`trends: false`" in said and "facetrend settings" in said and "placeholder story" in said
