"""Built-in ``webhook`` plugin: POST each alert as versioned JSON to a URL.

Config (``[plugins.webhook]``)::

    url = "https://hooks.example.invalid/banana"   # required
    timeout = 5.0                                   # seconds per request
    secret_env = "BANANA_MONITOR_WEBHOOK_SECRET"    # optional: name of the env variable
    headers = { "X-Team" = "fruit" }                # optional extra headers

Body: ``{"version": 1, "fingerprint": "<sha256 of the alert id>", "alert": {...}}``.
When ``secret_env`` names a set variable, the header ``X-Banana-Monitor-Signature``
carries ``sha256=<hex HMAC-SHA256 of the raw body with the secret>``.  The secret is read
from the environment at each request and is never logged or put in an error message.
Any non-2xx answer or network error raises, so the outbox retries the delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import urllib.error
import urllib.request
from typing import Any

from monitor import __version__, hookimpl

PAYLOAD_VERSION = 1
SIGNATURE_HEADER = "X-Banana-Monitor-Signature"
DEFAULT_TIMEOUT = 5.0

_config: dict[str, Any] = {}


class WebhookError(Exception):
    """A delivery that did not get a 2xx answer (message without URL or secret)."""


def fingerprint(alert) -> str:
    """Stable id of an alert for receivers to deduplicate: sha256 of ``post_id:label``."""
    return hashlib.sha256(alert.alert_id.encode("utf-8")).hexdigest()


def payload(alert) -> bytes:
    """The request body: versioned JSON carrying the alert and its fingerprint."""
    body = {"version": PAYLOAD_VERSION, "fingerprint": fingerprint(alert),
            "alert": alert.to_dict()}
    return json.dumps(body, ensure_ascii=False, sort_keys=True).encode("utf-8")


def sign(body: bytes, secret: str) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of ``body`` keyed with ``secret``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str, header: str) -> bool:
    """What a receiver does: constant-time comparison of the signature header."""
    return hmac.compare_digest(sign(body, secret), header or "")


def _secret(config: dict[str, Any]) -> str | None:
    name = config.get("secret_env")
    if not name:
        return None
    secret = os.environ.get(name)
    if not secret:
        raise WebhookError(f"webhook: environment variable {name} is not set")
    return secret


def build_request(alert, config: dict[str, Any]) -> urllib.request.Request:
    """A POST request for ``alert`` under ``config`` (signed when a secret is set)."""
    url = config.get("url")
    if not url:
        raise WebhookError("webhook: no url configured ([plugins.webhook] url)")
    body = payload(alert)
    headers = {"Content-Type": "application/json",
               "User-Agent": f"banana-monitor/{__version__}",
               **{str(k): str(v) for k, v in (config.get("headers") or {}).items()}}
    secret = _secret(config)
    if secret is not None:
        headers[SIGNATURE_HEADER] = sign(body, secret)
    return urllib.request.Request(url, data=body, headers=headers, method="POST")


@hookimpl
def monitor_start(plugin_config, settings):
    """Keep this plugin's config table."""
    _config.clear()
    _config.update(plugin_config or {})


@hookimpl
def send_alert(alert):
    """POST the alert; raise WebhookError on a non-2xx answer or a network error."""
    request = build_request(alert, _config)
    timeout = float(_config.get("timeout", DEFAULT_TIMEOUT))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        raise WebhookError(f"webhook: HTTP {error.code}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise WebhookError(f"webhook: {type(error).__name__}: {reason}") from None
    if not 200 <= status < 300:
        raise WebhookError(f"webhook: HTTP {status}")


@hookimpl
def monitor_stop():
    """Forget the config."""
    _config.clear()
