"""The forecaster's view: polar lows as objects (merged detections) and their tracks."""

from scanner.forecast.config import NotifyConfig, TrackingConfig
from scanner.forecast.objects import PolarLow, find_polar_lows
from scanner.forecast.tracks import Sighting, Track, build_tracks, link

__all__ = [
    "NotifyConfig",
    "PolarLow",
    "Sighting",
    "Track",
    "TrackingConfig",
    "build_tracks",
    "find_polar_lows",
    "link",
]
