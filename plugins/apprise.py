"""Built-in ``apprise`` plugin: one notification per alert to any Apprise URL.

Needs the optional extra: ``pip install 'banana-monitor[apprise]'``.  Apprise reaches
100+ services (Slack, Telegram, Matrix, ntfy, mailto, ...) from one URL each.

Config (``[plugins.apprise]``)::

    urls = ["ntfy://ntfy.example.invalid/bananas"]    # required (a string or a list)
    urls_env = "BANANA_MONITOR_APPRISE_URLS"            # optional: more URLs (comma
                                                        # separated) from the environment,
                                                        # for URLs that embed tokens

A notification that Apprise reports as not sent raises, so the outbox retries it.
"""

from __future__ import annotations

import os
from typing import Any

from monitor import hookimpl

_state: dict[str, Any] = {}


class AppriseError(Exception):
    """Apprise is missing, misconfigured, or did not deliver."""


def urls(config: dict[str, Any]) -> list[str]:
    configured = config.get("urls") or []
    found = [configured] if isinstance(configured, str) else [str(url) for url in configured]
    if config.get("urls_env"):
        extra = os.environ.get(str(config["urls_env"]), "")
        found += [url.strip() for url in extra.split(",") if url.strip()]
    return found


def make_notifier(config: dict[str, Any]):
    """An ``apprise.Apprise`` holding the configured URLs."""
    try:
        import apprise
    except ImportError:
        raise AppriseError(
            "apprise: not installed (pip install 'banana-monitor[apprise]')"
        ) from None
    notifier = apprise.Apprise()
    targets = urls(config)
    if not targets:
        raise AppriseError("apprise: [plugins.apprise] needs 'urls'")
    for url in targets:
        if not notifier.add(url):
            raise AppriseError("apprise: a configured URL is not understood by Apprise")
    return notifier


def title_and_body(alert) -> tuple[str, str]:
    words = ", ".join(str(item.get("word", item)) if isinstance(item, dict) else str(item)
                      for item in alert.explanation or [])
    title = f"{alert.label} alert: {alert.score:.2f} (post {alert.post_id})"
    body = f"{alert.text}\n\nWhy: {words or '-'}\nSource: {alert.source}"
    return title, body


@hookimpl
def monitor_start(plugin_config, settings):
    """Build the notifier from the config (errors surface again at send time)."""
    _state.clear()
    _state["config"] = dict(plugin_config or {})
    _state["notifier"] = make_notifier(_state["config"])


@hookimpl
def send_alert(alert):
    """Notify every configured URL; raise when Apprise reports a failure."""
    notifier = _state.get("notifier") or make_notifier(_state.get("config", {}))
    _state["notifier"] = notifier
    title, body = title_and_body(alert)
    if not notifier.notify(title=title, body=body):
        raise AppriseError("apprise: notification not delivered")


@hookimpl
def monitor_stop():
    """Drop the notifier."""
    _state.clear()
