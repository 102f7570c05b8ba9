"""Default QGIS styles for the GeoPackage layers, stored in its ``layer_styles`` table.

``layer_styles`` is the GeoPackage extension QGIS reads when it opens a layer: the row with
``useAsDefault = 1`` for the layer's table and geometry column is applied on load, so detections
open coloured by probability without any project file. The QML is a hand-written template
(``qml/graduated_probability.qml``, QGIS 3.22 syntax that current QGIS still reads) filled here
with classes and colours per layer.
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources
from string import Template
from xml.sax.saxutils import quoteattr

STYLE_NAME = "polarscan default"
STYLE_COLUMNS = (
    "f_table_catalog",
    "f_table_schema",
    "f_table_name",
    "f_geometry_column",
    "styleName",
    "styleQML",
    "styleSLD",
    "useAsDefault",
    "description",
    "owner",
    "ui",
    "update_time",
)

# class breaks of the positive-class probability and their colours (YlOrRd)
BREAKS = (0.0, 0.25, 0.5, 0.75, 0.9, 1.0)
COLOURS = ("255,255,178", "254,204,92", "253,141,60", "240,59,32", "189,0,38")

# per layer: (attribute, fill alpha 0-255 (0 = no fill), outline width mm)
LAYER_LOOKS = {
    "detections": ("probability", 120, 0.66),
    "windows": ("probability", 50, 0.2),
    "scenes": ("max_probability", 0, 0.5),
}

_SYMBOL = """      <symbol type="fill" name="{name}" alpha="1" clip_to_extent="1" force_rhr="0">
        <layer class="SimpleFill" enabled="1" pass="0" locked="0">
          <Option type="Map">
            <Option type="QString" name="color" value="{fill}"/>
            <Option type="QString" name="joinstyle" value="bevel"/>
            <Option type="QString" name="offset" value="0,0"/>
            <Option type="QString" name="offset_unit" value="MM"/>
            <Option type="QString" name="outline_color" value="{line}"/>
            <Option type="QString" name="outline_style" value="solid"/>
            <Option type="QString" name="outline_width" value="{width}"/>
            <Option type="QString" name="outline_width_unit" value="MM"/>
            <Option type="QString" name="style" value="{style}"/>
          </Option>
        </layer>
      </symbol>"""


def _symbol(name: str, rgb: str, alpha: int, width: float) -> str:
    return _SYMBOL.format(
        name=name,
        fill=f"{rgb},{alpha}",
        line=f"{rgb},255",
        width=width,
        style="solid" if alpha else "no",
    )


def graduated_qml(layer: str) -> str:
    """The QML document (a graduated renderer by probability) for one of our layers."""
    attr, alpha, width = LAYER_LOOKS[layer]
    ranges, symbols = [], []
    for i, (lo, hi) in enumerate(zip(BREAKS, BREAKS[1:], strict=False)):
        label = quoteattr(f"{lo:g} - {hi:g}")
        ranges.append(
            f'      <range lower="{lo:.6f}" upper="{hi:.6f}" symbol="{i}" label={label} render="true"/>'
        )
        symbols.append(_symbol(str(i), COLOURS[i], alpha, width))
    template = Template(
        resources.files("scanner.outputs").joinpath("qml/graduated_probability.qml").read_text()
    )
    return template.substitute(
        attr=attr,
        ranges="\n".join(ranges),
        symbols="\n".join(symbols),
        source_symbol=_symbol("0", COLOURS[2], alpha, width),
    )


def style_rows(geometry_column: str = "geom") -> list[dict]:
    """One ``layer_styles`` row per styled layer (QGIS' column names and conventions)."""
    now = datetime.now(UTC).replace(microsecond=0)
    return [
        {
            "f_table_catalog": "",
            "f_table_schema": "",
            "f_table_name": layer,
            "f_geometry_column": geometry_column,
            "styleName": STYLE_NAME,
            "styleQML": graduated_qml(layer),
            "styleSLD": "",
            "useAsDefault": True,
            "description": f"polarscan: {layer} graduated by {LAYER_LOOKS[layer][0]}",
            "owner": "polarscan",
            "ui": "",
            "update_time": now,
        }
        for layer in LAYER_LOOKS
    ]
