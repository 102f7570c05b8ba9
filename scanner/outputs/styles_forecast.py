"""QGIS styles of the forecaster's layers and rasters (QGIS 3.22 QML, hand-written).

- ``polar_lows``: circles graduated by peak probability, labelled "p=0.97 / 30 Nov 01:44";
- ``polar_low_footprints``, ``detections``, ``windows``: outlines only (see :mod:`styles`);
- ``tracks``: arrows in the direction of motion (QGIS' ArrowLine symbol layer);
- rasters: ``<id>_probability.qml`` / ``<id>_gradcam.qml`` sidecars (QGIS loads a ``.qml``
  beside a raster of the same stem as its default style): semi-transparent pseudocolour ramps
  over 0..1, the lowest values and nodata transparent.
"""

from __future__ import annotations

from pathlib import Path

from polarscan.common.atomic import atomic_path

HEADER = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
LABEL_EXPRESSION = (
    "'p=' || format_number(\"max_probability\", 2) || '\\n' || "
    "format_date(\"time\", 'dd MMM HH:mm')"
)

TRACK_LABEL = "\"track_id\" || '  ' || format_number(\"mean_speed_ms\", 1) || ' m/s'"


def _opt(name: str, value: object) -> str:
    return f'<Option type="QString" name="{name}" value="{value}"/>'


def marker_symbol(name: str, rgb: str, size_mm: float = 3.2) -> str:
    opts = "".join(
        _opt(k, v)
        for k, v in (
            ("color", f"{rgb},230"),
            ("name", "circle"),
            ("outline_color", "35,35,35,255"),
            ("outline_style", "solid"),
            ("outline_width", "0.4"),
            ("outline_width_unit", "MM"),
            ("size", size_mm),
            ("size_unit", "MM"),
        )
    )
    return (
        f'      <symbol type="marker" name="{name}" alpha="1" clip_to_extent="1" force_rhr="0">'
        f'<layer class="SimpleMarker" enabled="1" pass="0" locked="0"><Option type="Map">{opts}'
        "</Option></layer></symbol>"
    )


def labeling_xml(expression: str = LABEL_EXPRESSION, line: bool = False) -> str:
    """Simple labelling by an expression, with a white buffer, around points or along lines."""
    from xml.sax.saxutils import quoteattr

    placement, layer_type = ("2", "LineGeometry") if line else ("6", "PointGeometry")
    return f"""  <labeling type="simple">
    <settings calloutType="simple">
      <text-style fieldName={quoteattr(expression)} isExpression="1" fontSize="9" fontSizeUnit="Point" textColor="20,20,20,255" textOpacity="1" fontWeight="75" multilineHeight="1" fontFamily="Sans Serif" namedStyle="Bold" blendMode="0" previewBkgrdColor="255,255,255,255" useSubstitutions="0" allowHtml="0" capitalization="0" fontItalic="0" fontStrikeout="0" fontUnderline="0" fontWordSpacing="0" fontLetterSpacing="0" fontKerning="1" textOrientation="horizontal" legendString="Aa">
        <text-buffer bufferDraw="1" bufferSize="0.8" bufferSizeUnits="MM" bufferColor="255,255,255,255" bufferOpacity="0.8" bufferNoFill="1" bufferJoinStyle="128" bufferBlendMode="0"/>
      </text-style>
      <text-format wrapChar="" autoWrapLength="0" useMaxLineLengthForAutoWrap="1" multilineAlign="0" plussign="0" reverseDirectionSymbol="0" leftDirectionSymbol="&lt;" rightDirectionSymbol="&gt;" addDirectionSymbol="0" placeDirectionSymbol="0" formatNumbers="0" decimals="3"/>
      <placement placement="{placement}" dist="1.5" distUnits="MM" priority="5" quadOffset="4" offsetType="0" xOffset="0" yOffset="0" offsetUnits="MM" rotationAngle="0" centroidWhole="0" centroidInside="0" fitInPolygonOnly="0" overrunDistance="0" overrunDistanceUnit="MM" repeatDistance="0" repeatDistanceUnits="MM" maxCurvedCharAngleIn="25" maxCurvedCharAngleOut="-25" placementFlags="10" preserveRotation="1" layerType="{layer_type}" geometryGenerator="" geometryGeneratorEnabled="0" geometryGeneratorType="PointGeometry" lineAnchorPercent="0.5" lineAnchorType="0" lineAnchorClipping="0" polygonPlacementFlags="2" rotationUnit="AngleDegrees"/>
      <rendering obstacle="1" obstacleType="1" obstacleFactor="1" scaleVisibility="0" scaleMin="0" scaleMax="0" fontLimitPixelSize="0" fontMinPixelSize="3" fontMaxPixelSize="10000" drawLabels="1" displayAll="1" labelPerPart="0" mergeLines="0" minFeatureSize="0" limitNumLabels="0" maxNumLabels="2000" upsidedownLabels="0" zIndex="0" unplacedVisibility="0"/>
    </settings>
  </labeling>"""


def tracks_qml() -> str:
    """Tracks as dark arrows in the direction of motion (first sighting → last)."""
    fill = "".join(
        _opt(k, v)
        for k, v in (
            ("color", "20,60,160,220"),
            ("outline_color", "255,255,255,255"),
            ("outline_style", "solid"),
            ("outline_width", "0.2"),
            ("style", "solid"),
        )
    )
    arrow = "".join(
        _opt(k, v)
        for k, v in (
            ("arrow_type", "0"),
            ("arrow_start_width", "0.8"),
            ("arrow_start_width_unit", "MM"),
            ("arrow_width", "0.8"),
            ("arrow_width_unit", "MM"),
            ("head_length", "3"),
            ("head_length_unit", "MM"),
            ("head_thickness", "2"),
            ("head_thickness_unit", "MM"),
            ("head_type", "0"),
            ("is_curved", "0"),
            ("is_repeated", "1"),
        )
    )
    return f"""{HEADER}<qgis version="3.22.16-Białowieża" styleCategories="Symbology|Labeling">
  <renderer-v2 type="singleSymbol" symbollevels="0" enableorderby="0" forceraster="0">
    <symbols>
      <symbol type="line" name="0" alpha="1" clip_to_extent="1" force_rhr="0">
        <layer class="ArrowLine" enabled="1" pass="0" locked="0">
          <Option type="Map">{arrow}</Option>
          <symbol type="fill" name="@0@0" alpha="1" clip_to_extent="1" force_rhr="0">
            <layer class="SimpleFill" enabled="1" pass="0" locked="0"><Option type="Map">{fill}</Option></layer>
          </symbol>
        </layer>
      </symbol>
    </symbols>
    <rotation/>
    <sizescale/>
  </renderer-v2>
{labeling_xml(TRACK_LABEL, line=True)}
  <blendMode>0</blendMode>
  <featureBlendMode>0</featureBlendMode>
  <layerOpacity>1</layerOpacity>
  <previewExpression>"track_id"</previewExpression>
  <layerGeometryType>1</layerGeometryType>
</qgis>
"""


#: raster ramps: (value, RGB hex, alpha 0-255); between stops QGIS interpolates
RAMPS = {
    "probability": [(0.0, "#ffffb2", 0), (0.25, "#fecc5c", 90), (0.5, "#fd8d3c", 150),
                    (0.75, "#f03b20", 190), (1.0, "#bd0026", 220)],
    "gradcam": [(0.0, "#000004", 0), (0.1, "#3b0f70", 60), (0.4, "#b5367a", 140),
                (0.7, "#fb8861", 190), (1.0, "#fcfdbf", 230)],
}  # fmt: skip
RASTER_OPACITY = 0.75


def raster_qml(kind: str) -> str:
    """A singleband pseudocolour style over 0..1 for ``kind`` (probability | gradcam)."""
    items = "\n".join(
        f'          <item alpha="{a}" value="{v:g}" label="{v:g}" color="{c}"/>'
        for v, c, a in RAMPS[kind]
    )
    return f"""{HEADER}<qgis version="3.22.16-Białowieża" styleCategories="Symbology">
  <pipe>
    <provider><resampling enabled="false" zoomedInResamplingMethod="nearestNeighbour" zoomedOutResamplingMethod="nearestNeighbour" maxOversampling="2"/></provider>
    <rasterrenderer type="singlebandpseudocolor" band="1" opacity="{RASTER_OPACITY}" alphaBand="-1" classificationMin="0" classificationMax="1" nodataColor="">
      <rasterTransparency/>
      <minMaxOrigin><limits>None</limits><extent>WholeRaster</extent><statAccuracy>Estimated</statAccuracy><cumulativeCutLower>0.02</cumulativeCutLower><cumulativeCutUpper>0.98</cumulativeCutUpper><stdDevFactor>2</stdDevFactor></minMaxOrigin>
      <rastershader>
        <colorrampshader colorRampType="INTERPOLATED" classificationMode="1" clip="0" minimumValue="0" maximumValue="1" labelPrecision="2">
{items}
          <rampLegendSettings minimumLabel="" maximumLabel="" prefix="" suffix="" direction="0" useContinuousLegend="1" orientation="2"/>
        </colorrampshader>
      </rastershader>
    </rasterrenderer>
    <brightnesscontrast brightness="0" contrast="0" gamma="1"/>
    <huesaturation saturation="0" grayscaleMode="0" colorizeOn="0" colorizeRed="255" colorizeGreen="128" colorizeBlue="128" colorizeStrength="100" invertColors="0"/>
    <rasterresampler maxOversampling="2"/>
  </pipe>
  <blendMode>0</blendMode>
</qgis>
"""


def write_raster_styles(mosaic_dir: str | Path, mosaic_id: str) -> list[Path]:
    """``<id>_probability.qml`` / ``<id>_gradcam.qml`` beside the rasters that exist."""
    written = []
    for kind in RAMPS:
        tif = Path(mosaic_dir) / f"{mosaic_id}_{kind}.tif"
        if tif.exists():
            with atomic_path(tif.with_suffix(".qml")) as tmp:
                tmp.write_text(raster_qml(kind), encoding="utf-8")
            written.append(tif.with_suffix(".qml"))
    return written
