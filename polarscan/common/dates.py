"""Dates given by users: ``YYYY-MM-DD`` or ISO 8601 date-times, always returned as aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime

from polarscan.common.errors import UsageError

DATE_FORMS = "YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS]"


def to_utc(text: str) -> datetime:
    """``text`` as an aware UTC datetime: naive values are UTC, offsets are converted.
    A :class:`ValueError` when it is not an ISO 8601 date or date-time."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_date(text: str | datetime | None, flag: str, *, extra_hint: str = "") -> datetime | None:
    """Parse ``text`` given for option ``flag``; naive values are UTC, offsets are converted to
    UTC, ``None`` stays ``None`` and a datetime (already parsed, e.g. by the CLI) is only made
    UTC. A bad value is a :class:`UsageError` naming the flag."""
    if text is None:
        return None
    if isinstance(text, datetime):
        return text.replace(tzinfo=UTC) if text.tzinfo is None else text.astimezone(UTC)
    try:
        return to_utc(text)
    except ValueError:
        raise UsageError(
            f"{flag} {text!r} is not a date", f"give {flag} as {DATE_FORMS}{extra_hint}"
        ) from None
