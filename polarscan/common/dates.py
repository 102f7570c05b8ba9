"""Dates given by users: ``YYYY-MM-DD`` or ISO 8601 date-times, always returned as aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime

from polarscan.common.errors import UsageError


def parse_date(text: str | None, flag: str, *, extra_hint: str = "") -> datetime | None:
    """Parse ``text`` given for option ``flag``; naive values are UTC, offsets are converted to
    UTC, ``None`` stays ``None``. A bad value is a :class:`UsageError` naming the flag."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"{flag} {text!r} is not a date",
            f"give {flag} as YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS]{extra_hint}",
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
