"""Helpers for the mosaic tests: products of another datatake, made by editing copies."""

from __future__ import annotations

from pathlib import Path

from tests.support.products import copy_product


def other_datatake(p: Path, dest: Path) -> Path:
    """A copy of product folder ``p`` that claims datatake 0x05854A (name and manifest)."""
    name = p.name.replace("_058549_", "_05854A_")
    q = copy_product(p, dest, name)
    man = q / "manifest.safe"
    text = man.read_text()
    if "DataTakeID>361801<" not in text:
        raise AssertionError("the sample's datatake id 361801 (0x058549) is not in the manifest")
    man.write_text(text.replace("DataTakeID>361801<", "DataTakeID>361802<"))
    return q
