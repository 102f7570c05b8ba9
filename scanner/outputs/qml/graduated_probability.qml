<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="3.22.16-Białowieża" styleCategories="Symbology|Labeling">
  <!-- polarscan default style: features graduated by the model's positive-class probability.
       A hand-written template: the dollar fields are filled by scanner/outputs/styles.py. -->
  <renderer-v2 type="graduatedSymbol" attr="${attr}" graduatedMethod="GraduatedColor" symbollevels="0" enableorderby="0" forceraster="0">
    <ranges>
${ranges}
    </ranges>
    <symbols>
${symbols}
    </symbols>
    <source-symbol>
${source_symbol}
    </source-symbol>
    <colorramp type="gradient" name="[source]">
      <Option type="Map">
        <Option type="QString" name="color1" value="255,255,178,255"/>
        <Option type="QString" name="color2" value="189,0,38,255"/>
        <Option type="QString" name="discrete" value="0"/>
        <Option type="QString" name="rampType" value="gradient"/>
        <Option type="QString" name="stops" value="0.25;254,204,92,255:0.5;253,141,60,255:0.75;240,59,32,255"/>
      </Option>
    </colorramp>
    <classificationMethod id="Fixed">
      <symmetricMode enabled="0" symmetrypoint="0" astride="0"/>
      <labelFormat format="%1 - %2" labelprecision="2" trimtrailingzeroes="1"/>
      <extraInformation/>
    </classificationMethod>
    <rotation/>
    <sizescale/>
  </renderer-v2>
${labeling}
  <blendMode>0</blendMode>
  <featureBlendMode>0</featureBlendMode>
  <layerOpacity>1</layerOpacity>
  <previewExpression>"${attr}"</previewExpression>
  <layerGeometryType>${geometry_type}</layerGeometryType>
</qgis>
