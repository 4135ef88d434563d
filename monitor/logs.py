"""structlog set-up, done once by the CLI: JSON lines when not a TTY, console when it is."""

from __future__ import annotations

import logging
import sys

import structlog

# what configure_logging was last given (level, json), for worker processes to repeat
CONFIGURED: tuple[str, bool] = ("info", True)


def configure_logging(level: str = "info", json_logs: bool | None = None) -> None:
    """Route structlog to stderr at ``level``; ``json_logs=None`` picks by TTY."""
    global CONFIGURED
    if json_logs is None:
        json_logs = not sys.stderr.isatty()
    CONFIGURED = (level, json_logs)
    renderer = (
        structlog.processors.JSONRenderer()
        if json_logs
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        # one write() per event (line + newline): worker processes (run --workers) share
        # the stderr file, and print()'s separate newline write let their lines interleave
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
