"""Built-in ``email`` plugin: one plain-text email per alert over SMTP with STARTTLS.

Config (``[plugins.email]``)::

    host = "smtp.example.invalid"     # required
    port = 587
    starttls = true                   # upgrade the connection before sending (default)
    cafile = "/etc/ssl/my-ca.pem"     # optional: CA bundle for a private relay's certificate
    username = "alerts"               # optional: log in (after STARTTLS)
    password_env = "BANANA_MONITOR_SMTP_PASSWORD"   # the env variable holding the password
    from = "banana-monitor@example.invalid"          # required
    to = ["oncall@example.invalid"]                  # required: a string or a list
    timeout = 10.0

The Message-ID is derived from the alert id, so a mail system can spot a repeat.  A
failure (connection, TLS, refused recipients) raises and the outbox retries.
"""

from __future__ import annotations

import hashlib
import os
import smtplib
import ssl
from email.message import EmailMessage
from typing import Any

from monitor import hookimpl

DEFAULT_PORT = 587
DEFAULT_TIMEOUT = 10.0

_config: dict[str, Any] = {}


class EmailError(Exception):
    """The plugin is misconfigured (the message names the key, never a password)."""


def recipients(config: dict[str, Any]) -> list[str]:
    to = config.get("to") or []
    return [to] if isinstance(to, str) else [str(address) for address in to]


def build_message(alert, config: dict[str, Any]) -> EmailMessage:
    """The email for ``alert``: subject with class, score and post id; body with the fields."""
    if not config.get("from") or not recipients(config):
        raise EmailError("email: [plugins.email] needs 'from' and 'to'")
    message = EmailMessage()
    message["Subject"] = (f"[banana-monitor] {alert.label} alert: "
                          f"score {alert.score:.2f} (post {alert.post_id})")
    message["From"] = config["from"]
    message["To"] = ", ".join(recipients(config))
    digest = hashlib.sha256(alert.alert_id.encode("utf-8")).hexdigest()[:32]
    message["Message-ID"] = f"<{digest}@banana-monitor>"
    message["X-Banana-Monitor-Alert-Id"] = alert.alert_id
    words = ", ".join(str(item.get("word", item)) if isinstance(item, dict) else str(item)
                      for item in alert.explanation or [])
    message.set_content(
        f"Post {alert.post_id} scored {alert.score:.3f} for '{alert.label}'.\n\n"
        f"{alert.text}\n\n"
        f"Why: {words or '(no explanation)'}\n"
        f"Source: {alert.source}\nModel version: {alert.model_version}\n"
        f"Time: {alert.created_at}\n"
    )
    return message


def _password(config: dict[str, Any]) -> str | None:
    name = config.get("password_env")
    if not name:
        return None
    password = os.environ.get(name)
    if password is None:
        raise EmailError(f"email: environment variable {name} is not set")
    return password


def send(message: EmailMessage, config: dict[str, Any]) -> None:
    """Connect, STARTTLS (unless ``starttls = false``), log in if asked, send, quit."""
    host = config.get("host")
    if not host:
        raise EmailError("email: [plugins.email] needs 'host'")
    port = int(config.get("port", DEFAULT_PORT))
    timeout = float(config.get("timeout", DEFAULT_TIMEOUT))
    with smtplib.SMTP(host, port, timeout=timeout) as smtp:
        smtp.ehlo()
        if config.get("starttls", True):
            context = ssl.create_default_context(cafile=config.get("cafile"))
            smtp.starttls(context=context)
            smtp.ehlo()
        if config.get("username"):
            smtp.login(str(config["username"]), _password(config) or "")
        smtp.send_message(message)


@hookimpl
def monitor_start(plugin_config, settings):
    """Keep this plugin's config table."""
    _config.clear()
    _config.update(plugin_config or {})


@hookimpl
def send_alert(alert):
    """Email the alert; raises on any SMTP or TLS failure (the outbox retries)."""
    send(build_message(alert, _config), _config)


@hookimpl
def monitor_stop():
    """Forget the config."""
    _config.clear()
