"""The RGB recipe by role (co/cross) with per-mode windows, the old hh/hv keys, and model cards
that restrict the modes they accept (issue 14 item 2)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from polarscan.common.errors import UsageError
from polarscan.common.rgb import RGBRecipe, db_to_rgb


def test_defaults_are_todays_windows_for_both_modes():
    r = RGBRecipe()
    assert (r.red, r.green, r.blue) == ("cross", "cross", "co")
    for mode in ("EW", "IW"):
        assert r.window(mode, "co") == (-30.0, 0.0)
        assert r.window(mode, "cross") == (-36.0, -6.0)


def test_db_to_rgb_by_role_and_mode():
    co = np.array([[-30.0, -15.0, 0.0, np.nan]], np.float32)
    cross = np.array([[-36.0, -21.0, -6.0, -20.0]], np.float32)
    r = RGBRecipe.model_validate({"windows": {"IW": {"co_db": [-15.0, 15.0]}}})
    ew, iw = db_to_rgb(co, cross, r, "EW"), db_to_rgb(co, cross, r, "iw")
    # hand-computed: 1 + 254·(dB − low)/(high − low), 0 = nodata
    assert ew[0, :, 2].tolist() == [1, 128, 255, 0] and ew[0, :, 0].tolist() == [1, 128, 255, 0]
    assert iw[0, :, 2].tolist() == [1, 1, 128, 0] and (iw[..., 0] == ew[..., 0]).all()
    with pytest.raises(UsageError, match="no RGB dB windows for acquisition mode 'SM'"):
        db_to_rgb(co, cross, r, "SM")


def test_old_hh_hv_recipe_still_reads_with_a_deprecation_warning():
    old = {"red": "hv", "green": "hv", "blue": "hh", "hh_db": [-25.0, 5.0], "hv_db": [-30.0, 0.0]}
    with pytest.warns(DeprecationWarning, match=r"deprecated keys \(red: hv.*hh_db, hv_db\)"):
        r = RGBRecipe.model_validate(old)
    assert (r.red, r.green, r.blue) == ("cross", "cross", "co")
    for mode in ("EW", "IW"):
        assert r.window(mode, "co") == (-25.0, 5.0) and r.window(mode, "cross") == (-30.0, 0.0)
    # a mosaic config file written before issue 14 (YAML, as users have them)
    from polarscan.common.config import parse_config
    from scanner.mosaic.config import MosaicConfig

    text = (
        "rgb:\n  red: hv\n  green: hv\n  blue: hh\n  hh_db: [-30.0, 0.0]\n  hv_db: [-36.0, -6.0]\n"
    )
    with pytest.warns(DeprecationWarning):
        cfg = parse_config(MosaicConfig, yaml.safe_load(text))
    assert cfg == MosaicConfig()  # the old defaults are the new defaults
    with pytest.raises(ValueError, match="only windows"):  # old and new windows at once
        RGBRecipe.model_validate({"hh_db": [-30.0, 0.0], "windows": {}})


def test_new_recipe_does_not_warn(recwarn):
    RGBRecipe.model_validate({"red": "cross", "windows": {"EW": {"cross_db": [-35.0, -5.0]}}})
    assert not [w for w in recwarn if issubclass(w.category, DeprecationWarning)]


def test_model_card_may_restrict_modes(tmp_path):
    from polarscan.common.config import load_config
    from training.card import ModelCard, write_card

    card = ModelCard()
    assert card.modes == ("EW", "IW") and card.accepts("IW") and card.accepts("ew")
    ew_only = ModelCard(modes=("EW",))
    assert ew_only.accepts("EW") and not ew_only.accepts("IW")
    p = write_card(ew_only, tmp_path / "m.keras")
    assert load_config(ModelCard, p).modes == ("EW",)  # round trip through YAML
    with pytest.raises(UsageError, match="modes"):
        load_config(ModelCard, None, {"modes": ["S3"]})
    with pytest.raises(UsageError, match="modes"):
        load_config(ModelCard, None, {"modes": []})
