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

# per layer: (attribute, fill alpha 0-255 (0 = no fill), outline width mm); outlines only, so
# the probability and Grad-CAM rasters and the RGB underneath stay visible
LAYER_LOOKS = {
    "detections": ("probability", 0, 0.66),
    "windows": ("probability", 0, 0.2),
    "scenes": ("max_probability", 0, 0.5),
    "polar_low_footprints": ("max_probability", 0, 0.9),
}
POINT_LAYERS = {"polar_lows": "max_probability"}  # labelled circles (styles_forecast)
LINE_LAYERS = ("tracks",)  # arrows (styles_forecast)

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
    """The QML document (a graduated renderer by probability) for one of our layers: polygon
    outlines, or labelled circles for the polar lows."""
    from scanner.outputs.styles_forecast import labeling_xml, marker_symbol

    point = layer in POINT_LAYERS
    attr, alpha, width = (POINT_LAYERS[layer], 0, 0) if point else LAYER_LOOKS[layer]

    def symbol(i: int) -> str:
        if point:
            return marker_symbol(str(i), COLOURS[i], 2.4 + 0.6 * i)
        return _symbol(str(i), COLOURS[i], alpha, width)

    ranges, symbols = [], []
    for i, (lo, hi) in enumerate(zip(BREAKS, BREAKS[1:], strict=False)):
        label = quoteattr(f"{lo:g} - {hi:g}")
        ranges.append(
            f'      <range lower="{lo:.6f}" upper="{hi:.6f}" symbol="{i}" label={label} render="true"/>'
        )
        symbols.append(symbol(i))
    template = Template(
        resources.files("scanner.outputs").joinpath("qml/graduated_probability.qml").read_text()
    )
    return template.substitute(
        attr=attr,
        ranges="\n".join(ranges),
        symbols="\n".join(symbols),
        source_symbol=symbol(2).replace('name="2"', 'name="0"', 1),
        labeling=labeling_xml() if point else "",
        geometry_type=0 if point else 2,
    )


def layer_qml(layer: str) -> str:
    from scanner.outputs.styles_forecast import tracks_qml

    return tracks_qml() if layer in LINE_LAYERS else graduated_qml(layer)


def _describe(layer: str) -> str:
    if layer in LINE_LAYERS:
        return f"polarscan: {layer} as arrows"
    attr = POINT_LAYERS.get(layer) or LAYER_LOOKS[layer][0]
    return f"polarscan: {layer} graduated by {attr}"


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
            "styleQML": layer_qml(layer),
            "styleSLD": "",
            "useAsDefault": True,
            "description": _describe(layer),
            "owner": "polarscan",
            "ui": "",
            "update_time": now,
        }
        for layer in (*LAYER_LOOKS, *POINT_LAYERS, *LINE_LAYERS)
    ]
