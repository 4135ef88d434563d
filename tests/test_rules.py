"""Alert rules: per-class thresholds, labelled posts, explanations, throttle + digest."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from monitor.config import load_settings
from monitor.explain import explain
from monitor.model import Model
from monitor.posts import Post
from monitor.rules import AlertRules

WORDS = ["banana", "bread", "cookie", "chocolate", "sweet", "ripe"]


@pytest.fixture
def model(rng):
    return Model.create(WORDS, [8], ["banana", "cookie", "other"], rng)


def settings_from(tmp_path, toml):
    path = tmp_path / "banana-monitor.toml"
    path.write_text(toml)
    return load_settings(path, environ={})


class Clock:
    def __init__(self, now=1_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


def posts(n, label=None, prefix="p"):
    return [Post(id=f"{prefix}{i}", text=f"ripe banana bread {i}", label=label) for i in range(n)]


def test_per_class_thresholds_and_labelled_posts(tmp_path, model):
    settings = settings_from(tmp_path, """
[alerts]
classes = ["banana", "cookie"]
threshold = 0.5
[alerts.thresholds]
cookie = 0.9
""")
    rules = AlertRules(settings, model)
    batch = [Post("a", "x"), Post("b", "y"), Post("c", "z", label="banana"), Post("d", "w")]
    #                    banana cookie other
    probs = np.array([[0.60, 0.30, 0.10],   # a: banana ≥ 0.5
                      [0.05, 0.85, 0.10],   # b: cookie 0.85 < 0.9 → nothing
                      [0.95, 0.03, 0.02],   # c: labelled → never alerts
                      [0.02, 0.95, 0.03]])  # d: cookie ≥ 0.9
    alerts = rules.alerts_for(batch, probs, "dir:feed", 3)
    assert [(a.post_id, a.label, a.score) for a in alerts] == [("a", "banana", 0.60),
                                                               ("d", "cookie", 0.95)]
    assert {a.source for a in alerts} == {"dir:feed"} and {a.model_version for a in alerts} == {3}


def test_each_alert_carries_its_explanation(tmp_path, model):
    settings = settings_from(tmp_path, "[alerts]\nclasses=['banana']\nthreshold=0.0\nexplain=2\n")
    rules = AlertRules(settings, model)
    batch = [Post("a", "ripe banana bread"), Post("b", "sweet chocolate cookie")]
    alerts = rules.alerts_for(batch, model.probabilities([p.text for p in batch]), "s", 1)
    assert [a.explanation for a in alerts] == [explain(model, p.text, "banana", 2) for p in batch]
    assert any(a.explanation for a in alerts)  # the random model does lean on some word


def test_explanations_from_the_scored_bags_equal_retokenizing(tmp_path, model):
    settings = settings_from(tmp_path, "[alerts]\nclasses=['banana','cookie']\n"
                                       "threshold=0.0\nexplain=3\n")
    rules = AlertRules(settings, model)
    batch = [Post("a", "ripe banana bread"), Post("b", "sweet chocolate cookie"),
             Post("c", "nothing known"), Post("d", "banana banana cookie", label="banana")]
    bags = model.vocabulary.bag_of_words([p.text for p in batch])
    probabilities = model.probabilities_of(bags)
    with_bags = rules.alerts_for(batch, probabilities, "s", 1, bags=bags)
    assert [(a.post_id, a.label) for a in with_bags] == [
        (p, c) for p in "abc" for c in ("banana", "cookie")]  # d is labelled: no alert
    assert [a.explanation for a in with_bags] == [
        explain(model, batch["abc".index(a.post_id)].text, a.label, 3) for a in with_bags]
    retokenized = rules.alerts_for(batch, probabilities, "s", 1)
    assert [replace(a, created_at="") for a in with_bags] == [
        replace(a, created_at="") for a in retokenized]
    assert any(a.explanation for a in with_bags)


def test_explain_zero_turns_explanations_off(tmp_path, model):
    settings = settings_from(tmp_path, "[alerts]\nclasses=['banana']\nthreshold=0.0\nexplain=0\n")
    alerts = AlertRules(settings, model).alerts_for(posts(2), np.full((2, 3), 1 / 3), "s", 1)
    assert [a.explanation for a in alerts] == [[], []]


def test_throttle_holds_back_the_rest_and_sends_a_digest(tmp_path, model):
    settings = settings_from(tmp_path, """
[alerts]
classes = ["banana", "cookie"]
threshold = 0.5
throttle = { max = 2, window = 60 }
""")
    clock = Clock(1_000_040.0)  # 20 s into the window [1 000 020, 1 000 080): 13:47:00
    rules = AlertRules(settings, model, clock=clock)
    banana = np.tile([0.9, 0.05, 0.05], (5, 1))
    first = rules.alerts_for(posts(5), banana, "s", 1)
    assert [a.post_id for a in first] == ["p0", "p1"]
    # cookie has its own budget in the same window
    cookie = rules.alerts_for(posts(1, prefix="c"), np.array([[0.1, 0.8, 0.1]]), "s", 1)
    assert [(a.post_id, a.label) for a in cookie] == [("c0", "cookie")]
    more = rules.alerts_for(posts(3, prefix="q"), np.tile([0.9, 0.05, 0.05], (3, 1)), "s", 1)
    assert more == []
    # the window ends: the next call starts with the digest of the 6 held-back alerts
    clock.now += 60
    later = rules.alerts_for(posts(1, prefix="n"), np.array([[0.9, 0.05, 0.05]]), "s", 1)
    digest, fresh = later
    assert digest.post_id == "digest:banana:1970-01-12T13:47:00+00:00"
    assert digest.label == "banana" and digest.score == pytest.approx(0.9)
    assert "6 more 'banana' posts" in digest.text
    for held in ["p2", "p3", "p4", "q0", "q1", "q2"]:
        assert held in digest.text
    assert fresh.post_id == "n0"  # a new window, a new budget
    assert rules.flush(force=True) == []  # nothing held in the new window


def test_flush_force_emits_the_open_windows_digest(tmp_path, model):
    settings = settings_from(tmp_path,
                             "[alerts]\nclasses=['banana']\nthrottle={max=1, window=3600}\n")
    rules = AlertRules(settings, model, clock=Clock())
    assert len(rules.alerts_for(posts(3), np.tile([0.9, 0.05, 0.05], (3, 1)), "s", 1)) == 1
    (digest,) = rules.flush(force=True)
    assert digest.alert_id.startswith("digest:banana:") and "2 more" in digest.text
    assert rules.flush(force=True) == []


def test_workers_digests_of_one_window_are_distinct_alerts(tmp_path, model):
    settings = settings_from(tmp_path,
                             "[alerts]\nclasses=['banana']\nthrottle={max=1, window=3600}\n")
    digests = []
    for index in (0, 1):  # two workers' rules, each holding back its own alerts
        rules = AlertRules(settings, model, clock=Clock())
        rules.digest_scope = f"worker{index}"
        rules.alerts_for(posts(3, prefix=f"w{index}-"), np.tile([0.9, 0.05, 0.05], (3, 1)),
                         "s", 1)
        (digest,) = rules.flush(force=True)
        digests.append(digest)
    assert [d.post_id.rsplit(":", 1)[1] for d in digests] == ["worker0", "worker1"]
    assert len({d.alert_id for d in digests}) == 2  # the outbox keeps both
    assert "w0-1" in digests[0].text and "w1-1" in digests[1].text


def test_no_throttle_by_default(tmp_path, model):
    rules = AlertRules(settings_from(tmp_path, ""), model)
    alerts = rules.alerts_for(posts(50), np.tile([0.9, 0.05, 0.05], (50, 1)), "s", 1)
    assert len(alerts) == 50
