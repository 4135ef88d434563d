"""Settings: defaults < TOML < BANANA_MONITOR_* env < flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import ConfigError, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "banana-monitor.toml"
    path.write_text(text)
    return path


def test_defaults_follow_design(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no banana-monitor.toml here
    settings = load_settings(environ={})
    assert settings.feed == Path("feed") and settings.state == Path("feed/.state")
    assert settings.model is None and settings.source is None and settings.polling is False
    assert settings.alerts.classes == ["banana", "cookie"] and settings.alerts.threshold == 0.5
    assert settings.learning.enabled is True and settings.learning.learning_rate == 0.1
    assert settings.plugins == {} and settings.config_path is None


def test_layers_override_in_order(tmp_path):
    config = write(tmp_path, """
feed = "from-file"
state = "file-state"
[alerts]
classes = ["banana"]
threshold = 0.6
thresholds = {cookie = 0.9}
[learning]
enabled = false
[plugins.jsonl]
path = "out.jsonl"
[outbox]
retries = 3
""")
    env = {"BANANA_MONITOR_FEED": "from-env", "BANANA_MONITOR_ALERTS__THRESHOLD": "0.7",
           "BANANA_MONITOR_OUTBOX__RETRIES": "5", "BANANA_MONITOR_POLLING": "yes",
           "BANANA_MONITOR_PLUGINS": "-log", "BANANA_MONITOR_LOG_LEVEL": "debug"}
    settings = load_settings(config, environ=env, feed="from-flag", learning__enabled=True,
                             model=None)
    assert settings.feed == Path("from-flag")  # flag > env > file
    assert settings.state == Path("file-state")
    assert settings.alerts.threshold == 0.7 and settings.alerts.classes == ["banana"]
    assert settings.alerts.thresholds == {"cookie": 0.9}
    assert settings.learning.enabled is True
    assert settings.polling is True
    assert settings.plugins == {"jsonl": {"path": "out.jsonl"}}
    assert settings.raw["outbox"] == {"retries": 5}
    assert settings.config_path == config


def test_state_defaults_under_the_feed(tmp_path):
    settings = load_settings(write(tmp_path, 'feed = "/data/posts"\n'), environ={})
    assert settings.state == Path("/data/posts/.state")


def test_env_lists_and_cwd_config(tmp_path, monkeypatch):
    write(tmp_path, "settle = 2.5\n")
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={"BANANA_MONITOR_ALERTS__CLASSES": "cookie, banana"})
    assert settings.settle == 2.5 and settings.alerts.classes == ["cookie", "banana"]
    settings = load_settings(environ={"BANANA_MONITOR_ALERTS__CLASSES": '["other"]'})
    assert settings.alerts.classes == ["other"]


@pytest.mark.parametrize("text, message", [
    ("[alerts]\nthreshold = 2\n", "alerts.threshold"),
    ("feed = 3\n", "feed must be"),
    ("polling = 'maybe'\n", "boolean"),
    ("metrics_port = 70000\n", "metrics_port"),
    ("feed = [\n", "invalid TOML"),
])
def test_bad_values_are_config_errors(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(write(tmp_path, text), environ={})


def test_bad_env_boolean_names_the_variable(tmp_path):
    with pytest.raises(ConfigError, match="BANANA_MONITOR_LEARNING__ENABLED"):
        load_settings(write(tmp_path, ""), environ={"BANANA_MONITOR_LEARNING__ENABLED": "nah"})


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_env_reaches_plugin_tables(tmp_path):
    settings = load_settings(write(tmp_path, ""), environ={
        "BANANA_MONITOR_PLUGINS__JSONL__PATH": "/tmp/a.jsonl",
        "BANANA_MONITOR_PLUGINS__WEBHOOK__TIMEOUT": "2.5"})
    assert settings.plugins == {"jsonl": {"path": "/tmp/a.jsonl"}, "webhook": {"timeout": 2.5}}
