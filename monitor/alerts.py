"""Alerts: what a post that crosses a class threshold becomes, and what plugins receive."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

# the fields every alert carries, in this order (the jsonl plugin writes exactly these)
FIELDS = (
    "post_id",
    "label",
    "score",
    "text",
    "source",
    "model_version",
    "created_at",
    "explanation",
)


@dataclass(frozen=True)
class Alert:
    """One alert: post ``post_id`` scored ``score`` for class ``label``.

    ``explanation`` lists the words that drove the score, most influential first.
    """

    post_id: str
    label: str
    score: float
    text: str
    source: str
    model_version: int
    created_at: str = field(
        default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    )
    explanation: list = field(default_factory=list)

    @property
    def alert_id(self) -> str:
        """Stable across restarts and workers: the same post and class → the same id."""
        return f"{self.post_id}:{self.label}"

    def to_dict(self) -> dict[str, Any]:
        return {name: value for name, value in asdict(self).items() if name in FIELDS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Alert:
        """An alert from its dict; keys other than FIELDS are ignored."""
        if len(data) == len(FIELDS) and all(map(data.__contains__, FIELDS)):
            return cls(**data)  # the outbox's own payloads: exactly FIELDS
        return cls(**{name: data[name] for name in FIELDS if name in data})
