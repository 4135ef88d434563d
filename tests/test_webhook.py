"""The webhook plugin against a real HTTP server on 127.0.0.1, through the outbox."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
import structlog

from monitor.alerts import Alert
from monitor.outbox import Outbox, dead_letters
from monitor.plugins import get_plugin_manager
from plugins import webhook
from tests.test_outbox import enqueue, wait_for

SECRET = "s3cr3t-banana-hmac-key"
ENV = "BANANA_MONITOR_TEST_WEBHOOK_SECRET"


class Receiver:
    """A real HTTP server that answers 500 to the first ``failures`` requests."""

    def __init__(self, failures=0):
        self.failures = failures
        self.requests: list[tuple[dict, bytes, int]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = 500 if len(receiver.requests) < receiver.failures else 204
                receiver.requests.append((dict(self.headers), body, status))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def alert(post_id="p1"):
    return Alert(post_id=post_id, label="banana", score=0.93, text="ripe banana bread",
                 source="dir:feed", model_version=2, created_at="2026-11-30T09:00:00.000+00:00",
                 explanation=[{"word": "banana", "drop": 0.4}])


def outbox_for(make_ledger, table, **outbox):
    pm = get_plugin_manager(allow=["webhook"])
    cfg = {"timeout": 5, "max_attempts": 5, "backoff_base": 0.05, "backoff_max": 0.2,
           "poll_interval": 0.01, "seed": 1, **outbox}
    settings = SimpleNamespace(raw={"outbox": cfg}, plugins={"webhook": table})
    ledger = make_ledger()
    return ledger, Outbox(ledger, pm, settings)


def test_two_failures_then_a_signed_delivery(make_ledger, monkeypatch, capsys):
    monkeypatch.setenv(ENV, SECRET)
    with Receiver(failures=2) as receiver, structlog.testing.capture_logs() as logs:
        ledger, outbox = outbox_for(make_ledger, {"url": receiver.url, "secret_env": ENV})
        assert outbox.plugins == ["webhook"]
        outbox.start()
        try:
            enqueue(outbox, ledger, [alert()])
            assert wait_for(lambda: outbox.stats()["webhook"]["delivered"] == 1)
        finally:
            outbox.stop(5)
    assert [status for _, _, status in receiver.requests] == [500, 500, 204]
    headers, body, _ = receiver.requests[-1]
    # the receiver checks the signature with the shared secret
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers[webhook.SIGNATURE_HEADER] == expected
    assert webhook.verify(body, SECRET, headers[webhook.SIGNATURE_HEADER])
    assert not webhook.verify(body, "wrong", headers[webhook.SIGNATURE_HEADER])
    document = json.loads(body)
    assert document["version"] == 1
    assert document["fingerprint"] == hashlib.sha256(b"p1:banana").hexdigest()
    assert document["alert"] == alert().to_dict()
    # the same body every time: a receiver can deduplicate retries by fingerprint
    assert len({b for _, b, _ in receiver.requests}) == 1
    # two failures were logged, and the secret appears nowhere
    failures = [e for e in logs if e["event"] == "alert_delivery_failed"]
    assert [e["error"] for e in failures] == ["WebhookError: webhook: HTTP 500"] * 2
    assert SECRET not in repr(logs) and SECRET not in "".join(capsys.readouterr())


def test_no_secret_no_signature_and_retries_end_in_dead_letters(make_ledger):
    with Receiver(failures=100) as receiver:
        ledger, outbox = outbox_for(make_ledger, {"url": receiver.url}, max_attempts=3)
        outbox.start()
        try:
            enqueue(outbox, ledger, [alert()])
            assert wait_for(lambda: outbox.stats()["webhook"]["dead"] == 1)
        finally:
            outbox.stop(5)
    assert len(receiver.requests) == 3
    assert all(webhook.SIGNATURE_HEADER not in h for h, _, _ in receiver.requests)
    with ledger.transaction() as conn:
        (dead,) = dead_letters(conn)
    assert (dead["plugin"], dead["attempts"], dead["last_error"]) == (
        "webhook", 3, "WebhookError: webhook: HTTP 500")


def test_missing_secret_variable_is_an_error_that_names_it(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    with pytest.raises(webhook.WebhookError, match=ENV):
        webhook.build_request(alert(), {"url": "http://127.0.0.1:9/", "secret_env": ENV})


def test_unreachable_url_raises_without_leaking_the_url():
    with Receiver() as receiver:
        url = receiver.url
    webhook.monitor_start({"url": url + "?token=abc123", "timeout": 2}, None)
    try:
        with pytest.raises(webhook.WebhookError) as error:
            webhook.send_alert(alert())
    finally:
        webhook.monitor_stop()
    assert "abc123" not in str(error.value) and "Connection refused" in str(error.value)
