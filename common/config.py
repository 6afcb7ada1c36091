"""Typed configs: a (nested) dataclass filled from a YAML mapping, strictly.

A typo in a config must not train for hours with a default: an unknown key is an error
that lists the valid ones, and each value is checked against its field's type (the way
nanoGPT's GPTConfig is the single source of a model's options, but strict).
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config that does not match its dataclass; the message names the key path."""


def _check(value: Any, tp: Any, where: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        errors = []
        for option in get_args(tp):
            try:
                return _check(value, option, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{where}: {value!r} matches none of {tp}")
    if tp is type(None):
        if value is None:
            return None
        raise ConfigError(f"{where}: expected null, got {value!r}")
    if origin is Literal:
        if value in get_args(tp):
            return value
        raise ConfigError(f"{where}: {value!r} is not one of {list(get_args(tp))}")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return from_dict(tp, value, where=where)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{where}: expected {len(args)} items, got {len(value)}")
            pairs = enumerate(zip(value, args, strict=True))
            items = [_check(v, a, f"{where}[{i}]") for i, (v, a) in pairs]
        else:
            item_tp = args[0] if args else Any
            items = [_check(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        key_tp, val_tp = get_args(tp) or (Any, Any)
        return {
            _check(k, key_tp, where): _check(v, val_tp, f"{where}.{k}") for k, v in value.items()
        }
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise ConfigError(f"{where}: expected {tp}, got {value!r}")


def from_dict(cls: type[T], data: dict[str, Any], *, where: str = "") -> T:
    """Build dataclass `cls` from a mapping; unknown keys and wrong types are errors."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls} is not a dataclass")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        prefix = f"{where}: " if where else ""
        raise ConfigError(
            f"{prefix}unknown key(s) {', '.join(map(repr, unknown))}; valid keys for "
            f"{cls.__name__}: {', '.join(sorted(fields))}"
        )
    hints = get_type_hints(cls)
    kwargs = {
        name: _check(value, hints[name], f"{where}.{name}" if where else name)
        for name, value in data.items()
    }
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where or cls.__name__}: {exc}") from None


def from_registry(
    registry: typing.Mapping[str, type[T]],
    data: Any,
    *,
    key: str,
    where: str,
    default: str | None = None,
) -> T:
    """The config dataclass that `data[key]` names in `registry`, filled strictly from the
    rest of `data` (an unknown name lists the valid ones). A dataclass passes through, so a
    config can be built in code or read from YAML alike."""
    if dataclasses.is_dataclass(data) and not isinstance(data, type):
        return data  # type: ignore[return-value]
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping with {key!r}, got {data!r}")
    name = data.get(key, default)
    if name not in registry:
        raise ConfigError(f"{where}.{key}: unknown {name!r}; valid: {', '.join(sorted(registry))}")
    return from_dict(registry[name], {**data, key: name}, where=where)


def check_paths(config: Any, keys: typing.Iterable[str], *, where: str) -> None:
    """Raise ValueError naming the first of `keys` whose value is empty or names no file
    or folder (config fields that point at data)."""
    for key in keys:
        value = getattr(config, key)
        if not value or not Path(value).exists():
            raise ValueError(f"{where}.{key}: {value!r} not found")


def to_dict(config: Any) -> dict[str, Any]:
    """Plain nested dict (tuples as lists), ready for YAML or JSON."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(config)


def parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b.c=value` -> (['a', 'b', 'c'], value parsed as YAML).

    `a.b=` is the empty string, as a shell user means it (YAML alone would read it as null;
    `a.b=null` says that).
    """
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key.path=value")
    key, raw = text.split("=", 1)
    return key.strip().split("."), yaml.safe_load(raw) if raw.strip() else ""


def apply_overrides(data: dict[str, Any], overrides: typing.Iterable[str]) -> dict[str, Any]:
    """Set dotted keys in a nested mapping (validation happens later, in `from_dict`)."""
    for text in overrides:
        keys, value = parse_override(text)
        node = data
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {text!r}: {key!r} is not a mapping")
        node[keys[-1]] = value
    return data


def load_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    return data


def load_config(
    cls: type[T],
    path: str | os.PathLike[str] | None = None,
    overrides: typing.Iterable[str] = (),
    *,
    section: str | None = None,
) -> T:
    """Defaults of `cls`, updated from YAML file `path` (optionally one `section` of it),
    then from `key=value` overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        data = load_yaml(path)
        if section is not None:
            data = data.get(section) or {}
    data = apply_overrides(data, overrides)
    try:
        return from_dict(cls, data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}" if path else str(exc)) from None
