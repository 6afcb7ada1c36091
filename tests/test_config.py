from dataclasses import dataclass, field
from typing import Literal

import pytest

from common.config import ConfigError, from_dict, load_config, to_dict


@dataclass
class Inner:
    rate: float = 0.5
    names: tuple[str, ...] = ("a",)


@dataclass
class Outer:
    size: tuple[int, int] = (256, 176)
    mode: Literal["fast", "exact"] = "fast"
    inner: Inner = field(default_factory=Inner)
    weights: dict[str, float] = field(default_factory=lambda: {"x": 1.0})
    optional: int | None = None
    path: str = "weights.pth"


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ConfigError) as err:
        from_dict(Outer, {"inner": {"rat": 1.0}})
    assert "'rat'" in str(err.value) and "names, rate" in str(err.value)
    assert "inner" in str(err.value)


def test_types_are_checked_and_coerced():
    cfg = from_dict(Outer, {"size": [64, 44], "inner": {"rate": 1}, "optional": 3})
    assert cfg.size == (64, 44) and isinstance(cfg.inner.rate, float) and cfg.optional == 3
    for bad in (
        {"size": [64]},
        {"size": "64x44"},
        {"mode": "slow"},
        {"inner": {"rate": "high"}},
        {"optional": 1.5},
        {"weights": {"x": "y"}},
    ):
        with pytest.raises(ConfigError):
            from_dict(Outer, bad)
    with pytest.raises(ConfigError):
        from_dict(Outer, {"inner": {"rate": True}})  # a bool is not a number here


def test_yaml_overrides_and_round_trip(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("mode: exact\ninner:\n  names: [p, q]\n")
    cfg = load_config(Outer, path, ["inner.rate=0.25", "size=[32, 24]"])
    assert cfg.mode == "exact" and cfg.inner.names == ("p", "q") and cfg.inner.rate == 0.25
    assert cfg.size == (32, 24)
    assert from_dict(Outer, to_dict(cfg)) == cfg
    # `key=` empties a string (YAML alone reads an empty value as null); `key=null` is null
    assert load_config(Outer, path, ["path="]).path == ""
    assert load_config(Outer, path, ["optional=3", "optional=null"]).optional is None


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(ConfigError, match="no such config"):
        load_config(Outer, tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("mode: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(Outer, bad)
    with pytest.raises(ConfigError, match=r"key\.path=value"):
        load_config(Outer, None, ["no-equals-sign"])


def test_shipped_synth_config_matches_its_dataclass():
    from synth.config import SynthConfig
    from tests.conftest import ROOT

    assert load_config(SynthConfig, ROOT / "configs" / "synth.yaml") == SynthConfig()
