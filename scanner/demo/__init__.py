"""The embedded demo: a synthetic two-slice EW datatake with a polar low, scanned offline.

``scanner/demo/sample/`` holds the real annotation, calibration and noise files of one EW scene;
:mod:`scanner.demo.synthetic_product` writes measurement rasters for them; :mod:`.source` serves
the result as the ``demo`` scene source (generated on first use, then cached).
"""
