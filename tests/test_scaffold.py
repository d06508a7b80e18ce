import pytest
from facetrend import config, scaffold
from facetrend.errors import UserError


def test_new_refuses_the_trends_pages_address(tmp_path):
    with pytest.raises(UserError, match=f"`{config.TRENDS_SLUG}`, the trends page"):
        scaffold.new_report(tmp_path, config.TRENDS_SLUG)
    assert not (tmp_path / config.TRENDS_SLUG).exists()
    assert scaffold.new_report(tmp_path, "2027").is_file()
