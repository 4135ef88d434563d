"""Built-in ``log`` plugin: every alert as one structlog event (on by default).

At info level the event carries the alert's id, class, score and source, never the
post's text; the text is added at debug level.  Config: ``[plugins.log]`` (no keys).
"""

from __future__ import annotations

import structlog

from monitor import hookimpl

log = structlog.get_logger("plugins.log")


@hookimpl
def send_alert(alert):
    log.info(
        "alert",
        alert_id=alert.alert_id,
        label=alert.label,
        score=round(float(alert.score), 4),
        source=alert.source,
        model_version=alert.model_version,
    )
    log.debug("alert_text", alert_id=alert.alert_id, text=alert.text)
