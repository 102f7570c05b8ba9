"""Configuration of the forecaster's products: tracking, notifications, report and project.

Sections of :class:`scanner.scan.config.ScanConfig` (``tracking:`` and ``notify:`` in
``configs/scan.yaml``).
"""

from __future__ import annotations

from pydantic import Field, field_validator

from polarscan.common.config import StrictModel
from polarscan.common.errors import UsageError


class TrackingConfig(StrictModel):
    """When two polar lows seen on different passes are the same system."""

    max_gap_h: float = Field(
        12.0, gt=0, le=240, description="link sightings at most this many hours apart"
    )
    max_speed_ms: float = Field(
        30.0, gt=0, le=200, description="largest implied speed (m/s) of a linked pair"
    )

    @property
    def max_gap_s(self) -> float:
        return self.max_gap_h * 3600.0


class NotifyConfig(StrictModel):
    """Telling someone about the night's polar lows (never fails the scan)."""

    url: str | None = Field(None, description="POST the night's polar lows as GeoJSON here")
    command: str | None = Field(
        None, description="run this command with the GeoJSON file's path as last argument"
    )
    timeout_s: float = Field(10.0, gt=0, le=600, description="per HTTP attempt / the command")
    retries: int = Field(3, ge=0, le=20, description="extra HTTP attempts after a failure")
    backoff_s: float = Field(2.0, ge=0, le=300, description="first wait between attempts")
    only_with_lows: bool = Field(
        True, description="notify only when the run found at least one polar low"
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise UsageError(
                f"notify URL {value!r} is not an http(s) URL",
                "give a webhook URL such as https://example.org/hook",
                key="notify.url",
            )
        return value or None
