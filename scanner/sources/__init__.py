"""Where scenes come from: CDSE OData (default), ASF, DHuS (sentinelsat), a local folder, the demo."""
