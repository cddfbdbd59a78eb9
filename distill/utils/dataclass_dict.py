"""The one way a mapping (YAML, ``--set`` strings, a checkpoint's stored config) becomes a
config dataclass: unknown keys are refused naming where they came from, values are converted
to each field's type, and the dataclass's own checks (``__post_init__``) run on the result."""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Type, TypeVar

import yaml

_C = TypeVar("_C")


def from_mapping(cls: Type[_C], mapping: Mapping[str, Any], where: str = "") -> _C:
    """Build the dataclass ``cls`` (every field with a default) from ``mapping``; fields not in
    it keep their defaults. ``where`` names the source in errors (default: the class's name)."""
    obj = cls()
    for key, value in (mapping or {}).items():
        set_field(obj, key, value, where or f"Unknown {cls.__name__} field")
    return dataclasses.replace(obj)  # re-runs __post_init__ on the new values


def set_field(target: Any, key: str, value: Any, where: str) -> None:
    """Set ``target.key = value`` with the field's type, or raise naming ``where``."""
    fields = {f.name: f for f in dataclasses.fields(target)}
    if key not in fields:
        raise ValueError(f"{where}: unknown key '{key}' (valid: {', '.join(sorted(fields))})")
    current = getattr(target, key)
    try:
        setattr(target, key, coerce(value, type(current)))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}.{key}: cannot use {value!r} ({err})") from err


def coerce(value: Any, kind: type) -> Any:
    """Convert ``value`` (from YAML or a ``--set`` string) to the field's type."""
    if value is None and kind is str:
        return ""  # "key=" or "key: " in YAML: an empty string, not "None"
    if kind is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "1", "yes"):
            return True
        if str(value).lower() in ("false", "0", "no"):
            return False
        raise ValueError("expected true or false")
    if kind in (list, tuple):
        if isinstance(value, str):  # "[1, 2, 3]" or "(1, 2, 3)" from the command line
            value = yaml.safe_load(value.replace("(", "[").replace(")", "]"))
        if not isinstance(value, (list, tuple)):
            raise ValueError("expected a list such as [1, 2, 3]")
        return kind(value)
    if kind is int and isinstance(value, float) and not value.is_integer():
        raise ValueError("expected an integer")
    if kind in (int, float) and isinstance(value, str):
        return kind(float(value)) if kind is int else float(value)
    return kind(value)
