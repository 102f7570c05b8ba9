"""Fixtures the source tests share: a loopback server and the recorded CDSE OData pages."""

from __future__ import annotations

import pytest

from tests.support.cdse_replay import load_pages
from tests.support.loopback import LoopbackServer


@pytest.fixture
def srv():
    """A fresh loopback HTTP server per test (handlers and request logs do not leak)."""
    with LoopbackServer(max_lifetime=120) as s:
        yield s


@pytest.fixture(scope="module")
def ew_pages(test_data):
    """Recorded EW GRDM dual-pol query pages."""
    return load_pages(test_data / "cdse-odata", "ew_grd_page_*.json")


@pytest.fixture(scope="module")
def aux_pages(test_data):
    """Recorded pages of a query that also matched foreign products (AUX files…)."""
    return load_pages(test_data / "cdse-odata", "odata_page_*.json")
