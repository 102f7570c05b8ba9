"""Write-then-rename: failures leave the previous version, directory swaps survive a crash."""

from __future__ import annotations

import pytest

from polarscan.common.atomic import atomic_path


def test_file_replaced_only_on_success(tmp_path):
    dest = tmp_path / "a.txt"
    dest.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(dest) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert dest.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]  # no temporary left
    with atomic_path(dest) as tmp:
        tmp.write_text("new")
    assert dest.read_text() == "new"


def test_directory_swap_and_recovery_after_a_crash_between_renames(tmp_path):
    dest = tmp_path / "stac"
    with atomic_path(dest) as tmp:
        tmp.mkdir()
        (tmp / "catalog.json").write_text("v1")
    with atomic_path(dest) as tmp:
        tmp.mkdir()
        (tmp / "catalog.json").write_text("v2")
    assert (dest / "catalog.json").read_text() == "v2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stac"]
    # a crash after "dest → .old" and before "tmp → dest": only the old copy is left
    dest.rename(tmp_path / ".stac.deadbeef.old")
    with atomic_path(dest) as tmp:
        # the writer sees the previous version, as if nothing had happened
        assert (dest / "catalog.json").read_text() == "v2"
        tmp.mkdir()
        (tmp / "catalog.json").write_text("v3")
    assert (dest / "catalog.json").read_text() == "v3"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stac"]
