"""The apprise plugin, delivered through an Apprise custom notification (in-process)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from monitor.alerts import Alert
from monitor.outbox import Outbox
from monitor.plugins import get_plugin_manager
from plugins import apprise as apprise_plugin
from tests.test_outbox import enqueue, wait_for

apprise = pytest.importorskip("apprise", reason="the optional extra 'apprise' is not installed")
from apprise.decorators import notify  # noqa: E402

RECEIVED: list[dict] = []
FAIL_FIRST = {"n": 0}


@notify(on="bananatest")
def bananatest(body, title, notify_type, *args, **kwargs):
    """A custom Apprise schema: bananatest://... lands here, no network involved."""
    if FAIL_FIRST["n"] > 0:
        FAIL_FIRST["n"] -= 1
        return False
    RECEIVED.append({"title": title, "body": body})
    return True


@pytest.fixture(autouse=True)
def clean():
    RECEIVED.clear()
    FAIL_FIRST["n"] = 0


def alert(post_id="p3"):
    return Alert(post_id=post_id, label="banana", score=0.88, text="banana split tonight",
                 source="dir:feed", model_version=1, explanation=[{"word": "banana", "drop": 0.6}])


def test_alerts_reach_an_apprise_url_and_a_failure_is_retried(make_ledger):
    FAIL_FIRST["n"] = 1
    settings = SimpleNamespace(
        raw={"outbox": {"poll_interval": 0.01, "backoff_base": 0.02, "backoff_max": 0.05}},
        plugins={"apprise": {"urls": ["bananatest://alerts"]}},
    )
    ledger = make_ledger()
    outbox = Outbox(ledger, get_plugin_manager(allow=["apprise"]), settings)
    outbox.start()
    try:
        enqueue(outbox, ledger, [alert("p3"), alert("p4")])
        assert wait_for(lambda: outbox.stats()["apprise"]["delivered"] == 2)
    finally:
        outbox.stop(5)
    assert sorted(r["title"] for r in RECEIVED) == [
        "banana alert: 0.88 (post p3)", "banana alert: 0.88 (post p4)"]
    assert all("banana split tonight" in r["body"] and "Why: banana" in r["body"]
               for r in RECEIVED)
    assert outbox.stats()["apprise"]["errors"] == 1


def test_urls_from_the_environment(monkeypatch):
    monkeypatch.setenv("TEST_APPRISE_URLS", "bananatest://one, bananatest://two")
    config = {"urls": [], "urls_env": "TEST_APPRISE_URLS"}
    assert apprise_plugin.urls(config) == ["bananatest://one", "bananatest://two"]
    apprise_plugin.monitor_start(config, None)
    try:
        apprise_plugin.send_alert(alert())
    finally:
        apprise_plugin.monitor_stop()
    assert len(RECEIVED) == 2


def test_no_urls_is_a_clear_error():
    with pytest.raises(apprise_plugin.AppriseError, match="needs 'urls'"):
        apprise_plugin.make_notifier({})
