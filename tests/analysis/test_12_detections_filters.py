"""``open_detections(OUT, bbox=…, since=…, until=…)``: GDAL reads only the rows of an area and a
time span (spatial index, attribute filter); the same rows as filtering everything in pandas /
shapely afterwards."""

from __future__ import annotations

import pandas as pd
import pytest

from polarscan.common.errors import UsageError
from scanner import open_detections
from scanner.aoi import AOI
from tests.analysis import synthetic_scan as syn


def _ids(df) -> list[tuple[str, str]]:
    return sorted(zip(df["mosaic_id"], df.get("window_id", df["mosaic_id"]), strict=True))


@pytest.fixture(scope="module")
def everything(synthetic_scan):
    return open_detections(synthetic_scan)


@pytest.mark.parametrize(
    ("since", "until", "mosaics"),
    [
        ("2024-01-10T12:00", None, (1, 2)),  # the evening pass and the next day's
        (None, "2024-01-11", (0, 1)),
        ("2024-01-10T05:01", "2024-01-10T18:00", (0,)),  # meets the first pass's span only
        ("2024-01-10T05:01", "2024-01-10T18:00:01", (0, 1)),
    ],
)
def test_time_span(synthetic_scan, everything, since, until, mosaics):
    got = open_detections(synthetic_scan, since=since, until=until)
    want_ids = {syn.MOSAICS[i].mosaic_id for i in mosaics}
    for layer in ("windows", "detections", "scenes"):
        frame = getattr(everything, layer)
        keep = pd.Series(True, index=frame.index)
        if since:
            keep &= frame["stop"] >= pd.Timestamp(since, tz="UTC")
        if until:
            keep &= frame["start"] < pd.Timestamp(until, tz="UTC")
        assert set(frame[keep]["mosaic_id"]) == want_ids, layer  # the reference agrees
        assert _ids(getattr(got, layer)) == _ids(frame[keep]), layer


@pytest.mark.parametrize(
    ("bbox", "expect"),
    [
        ((60, 88, 100, 90), None),  # part of the passes, near the pole
        ((-20, 65, 0, 70), 0),  # the Norwegian Sea: nothing there
        ((-180, 60, 180, 90), "all"),
        ((170, 88, -170, 90), None),  # across 180°
    ],
)
def test_area(synthetic_scan, everything, bbox, expect):
    got = open_detections(synthetic_scan, bbox=bbox)
    mask = AOI.from_bbox(*bbox).arctic_geometry
    for layer in ("windows", "detections", "scenes"):
        frame = getattr(everything, layer)
        want = frame[frame.intersects(mask)]
        assert _ids(getattr(got, layer)) == _ids(want), layer
        if expect == 0:
            assert len(want) == 0
        elif expect == "all":
            assert len(want) == len(frame)
    if bbox == (60, 88, 100, 90):
        assert 0 < len(got.windows) < len(everything.windows)
        assert set(got.windows["mosaic_id"]) >= {syn.MOSAICS[1].mosaic_id}


def test_both_and_bad_values(synthetic_scan):
    got = open_detections(synthetic_scan, bbox=(60, 88, 100, 90), since="2024-01-10T12:00")
    assert set(got.windows["mosaic_id"]) == {syn.MOSAICS[1].mosaic_id}
    with pytest.raises(UsageError, match="not before until"):
        open_detections(synthetic_scan, since="2024-02-01", until="2024-01-01")
    with pytest.raises(UsageError, match="not a date"):
        open_detections(synthetic_scan, since="last winter")
    with pytest.raises(UsageError, match="south"):
        open_detections(synthetic_scan, bbox=(0, 70, 10, 60))
