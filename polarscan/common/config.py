"""Typed configuration: YAML files validated by pydantic models that reject unknown keys."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from polarscan.common.errors import UsageError


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are errors, values are validated."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())


M = TypeVar("M", bound=StrictModel)


def _describe(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "<root>"
        if e["type"] == "extra_forbidden":
            parts.append(f"unknown key '{loc}'")
        else:
            parts.append(f"'{loc}': {e['msg']}")
    return "; ".join(parts)


def parse_config(cls: type[M], data: dict | None, source: str = "config") -> M:
    """Validate ``data`` against ``cls``; raise :class:`UsageError` naming the bad keys."""
    try:
        return cls.model_validate(data or {})
    except ValidationError as err:
        valid = ", ".join(cls.model_fields)
        raise UsageError(
            f"invalid {source}: {_describe(err)}",
            f"fix the key or value (valid top-level keys: {valid})",
        ) from None


def load_config(cls: type[M], path: str | Path | None, overrides: dict | None = None) -> M:
    """Load a YAML file into ``cls``; ``overrides`` (e.g. from CLI flags) win over the file."""
    data: dict = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise UsageError(
                f"config file not found: {p}", "give an existing YAML file", key="config"
            )
        try:
            loaded = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as err:
            raise UsageError(
                f"config file {p} is not valid YAML ({err})", "fix the YAML syntax"
            ) from None
        if not isinstance(loaded, dict):
            raise UsageError(
                f"config file {p} must hold a mapping of keys", "write 'key: value' lines"
            )
        data = loaded
    if overrides:
        data = _merge(data, {k: v for k, v in overrides.items() if v is not None})
    return parse_config(cls, data, source=f"config {path}" if path else "config")


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out
