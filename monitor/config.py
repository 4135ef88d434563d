"""Settings: defaults < TOML file < ``BANANA_MONITOR_*`` environment < command-line flags.

The TOML file is ``--config FILE``, else ``banana-monitor.toml`` in the working
directory when present.  An environment variable names a key in upper case, nested
tables joined by ``__``: ``BANANA_MONITOR_ALERTS__THRESHOLD=0.7`` is ``[alerts]
threshold = 0.7``.  Known keys are converted to their type (booleans accept
1/0/true/false/yes/no/on/off, lists are comma separated or a JSON array); unknown
nested keys (``BANANA_MONITOR_OUTBOX__RETRIES=5``) are parsed as JSON when they can be,
else kept as strings.  Other modules read their own tables from ``settings.raw``.
"""

from __future__ import annotations

import copy
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "BANANA_MONITOR_"
DEFAULT_CONFIG_NAME = "banana-monitor.toml"

DEFAULTS: dict[str, Any] = {
    "feed": "feed",
    "model": None,  # None → the shipped default model
    "state": None,  # None → <feed>/.state
    "source": None,  # None → the feed directory; redis://HOST:PORT/DB → Redis Streams
    "polling": False,
    "settle": 1.0,  # seconds a file's size must be stable when no close event is seen
    "write_timeout": 30.0,  # an open writer silent this long counts as done
    "rescan_interval": 5.0,  # seconds between reconciling directory listings
    "max_file_bytes": 256 * 1024 * 1024,
    "text_field": "text",
    "id_field": "id",
    "batch_size": 4096,  # posts per scoring batch
    "workers": 1,  # scoring processes over the feed directory (monitor/workers.py)
    "metrics_port": None,
    "metrics_host": "127.0.0.1",
    "alerts": {"classes": ["banana", "cookie"], "threshold": 0.5, "thresholds": {}},
    "learning": {"enabled": True, "learning_rate": 0.1},
    "plugins": {},
}

# env variables with this prefix that are not settings (read elsewhere)
_NOT_SETTINGS = {"PLUGINS", "LOG_LEVEL", "SHARED"}


class ConfigError(ValueError):
    """A config file, variable or flag that cannot be used; the message says which."""


@dataclass(frozen=True)
class AlertSettings:
    classes: list[str]
    threshold: float
    thresholds: dict[str, float]


@dataclass(frozen=True)
class LearningSettings:
    enabled: bool
    learning_rate: float


@dataclass(frozen=True)
class Settings:
    """Everything ``run`` and ``status`` need; ``raw`` is the merged TOML-shaped dict."""

    feed: Path
    model: Path | None
    state: Path
    source: str | None
    polling: bool
    settle: float
    write_timeout: float
    rescan_interval: float
    max_file_bytes: int
    text_field: str
    id_field: str
    batch_size: int
    workers: int
    metrics_port: int | None
    metrics_host: str
    alerts: AlertSettings
    learning: LearningSettings
    plugins: dict[str, dict]
    raw: dict[str, Any] = field(repr=False)
    config_path: Path | None = None


def load_settings(
    config_path: str | os.PathLike | None = None,
    environ: Mapping[str, str] | None = None,
    **flag_overrides: Any,
) -> Settings:
    """Merge the four layers; flags that are None are not given.

    Nested flags use ``__``: ``load_settings(learning__enabled=False)``.
    """
    raw = copy.deepcopy(DEFAULTS)
    path = _config_file(config_path)
    if path is not None:
        _merge(raw, _read_toml(path))
    _merge(raw, _from_env(os.environ if environ is None else environ))
    _merge(raw, _from_flags(flag_overrides))
    return _build(raw, path)


def _config_file(config_path) -> Path | None:
    if config_path is not None:
        path = Path(config_path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        return path
    default = Path(DEFAULT_CONFIG_NAME)
    return default if default.is_file() else None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from None
    except OSError as error:
        raise ConfigError(f"{path}: {error.strerror}") from None


def _merge(base: dict, update: Mapping) -> None:
    """Deep-merge ``update`` into ``base`` (tables merge, everything else replaces)."""
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        key = name[len(ENV_PREFIX):]
        if key in _NOT_SETTINGS or not key:
            continue
        path = [part.lower() for part in key.split("__")]
        if len(path) == 1 and path[0] not in DEFAULTS:
            continue  # unknown top-level variable: not ours
        _set_path(result, path, _env_value(path, value))
    return result


def _from_flags(flags: Mapping[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in flags.items():
        if value is not None:
            _set_path(result, name.split("__"), value)
    return result


def _set_path(target: dict, path: list[str], value: Any) -> None:
    for part in path[:-1]:
        target = target.setdefault(part, {})
    target[path[-1]] = value


def _env_value(path: list[str], text: str) -> Any:
    """A variable's string → the type of the default it overrides (JSON for unknown)."""
    default: Any = DEFAULTS
    for part in path:
        default = default.get(part, _UNKNOWN) if isinstance(default, dict) else _UNKNOWN
    if default is _UNKNOWN or default is None:
        return _json_or_string(text)
    if isinstance(default, bool):
        return _boolean(text, "__".join(path))
    if isinstance(default, list):
        parsed = _json_or_string(text)
        if isinstance(parsed, list):
            return parsed
        return [item.strip() for item in text.split(",") if item.strip()]
    if isinstance(default, (int, float, dict)):
        return _json_or_string(text)
    return text


_UNKNOWN = object()


def _json_or_string(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _boolean(text: str, name: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{ENV_PREFIX}{name.upper()}: expected a boolean, got {text!r}")


def _build(raw: dict[str, Any], path: Path | None) -> Settings:
    feed = Path(_string(raw, "feed"))
    state = Path(raw["state"]) if raw.get("state") else feed / ".state"
    alerts = raw.get("alerts") or {}
    learning = raw.get("learning") or {}
    plugins = raw.get("plugins") or {}
    if not isinstance(plugins, dict):
        raise ConfigError("[plugins] must be a table")
    return Settings(
        feed=feed,
        model=Path(raw["model"]) if raw.get("model") else None,
        state=state,
        source=str(raw["source"]) if raw.get("source") else None,
        polling=_bool(raw, "polling"),
        settle=_number(raw, "settle", minimum=0.0),
        write_timeout=_number(raw, "write_timeout", minimum=0.0),
        rescan_interval=_number(raw, "rescan_interval", minimum=0.05),
        max_file_bytes=int(_number(raw, "max_file_bytes", minimum=1)),
        text_field=_string(raw, "text_field"),
        id_field=_string(raw, "id_field"),
        batch_size=int(_number(raw, "batch_size", minimum=1)),
        workers=_whole(raw, "workers", minimum=1, maximum=64),
        metrics_port=_optional_port(raw.get("metrics_port")),
        metrics_host=_string(raw, "metrics_host"),
        alerts=AlertSettings(
            classes=_string_list(alerts.get("classes", []), "alerts.classes"),
            threshold=_number(alerts, "threshold", 0.0, 1.0, "alerts.threshold"),
            thresholds={
                str(k): _number(alerts["thresholds"], k, 0.0, 1.0, f"alerts.thresholds.{k}")
                for k in (alerts.get("thresholds") or {})
            },
        ),
        learning=LearningSettings(
            enabled=_bool(learning, "enabled", "learning.enabled"),
            learning_rate=_number(learning, "learning_rate", 0.0, None, "learning.learning_rate"),
        ),
        plugins={str(k): dict(v) for k, v in plugins.items() if isinstance(v, dict)},
        raw=raw,
        config_path=path,
    )


def _string(table: dict, key: str) -> str:
    value = table.get(key)
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        raise ConfigError(f"{key} must be a non-empty string, got {value!r}")
    return str(value)


def _bool(table: dict, key: str, name: str | None = None) -> bool:
    value = table.get(key)
    if isinstance(value, str):
        return _boolean(value, name or key)
    if not isinstance(value, bool):
        raise ConfigError(f"{name or key} must be true or false, got {value!r}")
    return value


def _number(table, key, minimum=None, maximum=None, name=None) -> float:
    value = table.get(key)
    name = name or key
    if isinstance(value, str):
        value = _json_or_string(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ConfigError(f"{name} must be within [{minimum}, {maximum}], got {value!r}")
    return float(value)


def _whole(table, key, minimum: int, maximum: int) -> int:
    value = _number(table, key, minimum, maximum)
    if value != int(value):
        raise ConfigError(f"{key} must be a whole number, got {table[key]!r}")
    return int(value)


def _string_list(value, name: str) -> list[str]:
    if isinstance(value, str):
        value = [item.strip() for item in value.split(",") if item.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{name} must be a list of strings, got {value!r}")
    return list(value)


def _optional_port(value) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = _json_or_string(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise ConfigError(f"metrics_port must be a port number, got {value!r}")
    return value
