"""End-to-end online learning: the real daemon against `train --batch-size 1`.

The daemon runs as a subprocess (``python -m monitor run --learn``) on a temp feed; the
final model is its shutdown checkpoint in ``<state>/models``; ``train --batch-size 1
--epochs 1 --no-shuffle --model START`` on the same posts in the order the daemon
learned them (its journal) must give identical arrays — with and without ``kill -9``.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest

from monitor.model import Model
from monitor.train import Examples, Options, build_vocabulary, fit
from tests.conftest import ROOT
from tests.test_daemon_e2e import drop

pytestmark = pytest.mark.slow

CORPUS = ROOT / "corpus" / "banana-cookie"
PROBES = [
    "banana bread fresh from the oven",
    "peanut butter banana smoothie for breakfast",
    "warm chocolate chip cookies and milk",
    "baked oatmeal cookies for the bake sale",
    "banana pancakes with a cookie on the side",
]


def corpus(split: str) -> list[dict]:
    return [json.loads(line) for line in (CORPUS / f"{split}.jsonl").read_text().splitlines()]


def jsonl(posts: list[dict]) -> bytes:
    return "".join(json.dumps(post) + "\n" for post in posts).encode()


@pytest.fixture(scope="module")
def start_model(tmp_path_factory) -> Path:
    """A fresh model over the corpus vocabulary (what `model init` writes)."""
    texts = [post["text"] for post in corpus("train")]
    model = Model.create(build_vocabulary(texts, 1500), [32, 16], ["banana", "cookie", "other"],
                         np.random.default_rng(7))
    return model.save(tmp_path_factory.mktemp("start") / "start.npz")


@pytest.fixture(scope="module")
def good_model(tmp_path_factory, start_model) -> Path:
    """A model already trained offline (one short run), for the poison tests.

    Its hyperparameters are pinned, not train's defaults: those are tuned for long runs
    with early stopping (40 epochs, lr 0.05, batch 16), and three epochs of them leave
    a model at ~0.81 val accuracy whose prequential baseline under lr-0.1 online steps
    is too low for any poison to drop it by drift_drop.  The poison tests need a model
    that is actually good, so that is checked here, before any test relies on it.
    """
    posts = corpus("train")[:2000]
    model = Model.load(start_model)
    examples = Examples("train", [p["text"] for p in posts], [p["label"] for p in posts],
                        list(range(1, len(posts) + 1)))
    options = Options(learning_rate=0.1, batch_size=8, epochs=3, shuffle=True, patience=None)
    fit(model, examples, options, np.random.default_rng(1))
    val = corpus("val")[:300]
    predicted = model.probabilities([p["text"] for p in val]).argmax(axis=1)
    accuracy = np.mean([model.label_names[k] == p["label"] for k, p in zip(predicted, val)])
    assert accuracy >= 0.9, f"good_model is not good: val accuracy {accuracy:.3f}"
    return model.save(tmp_path_factory.mktemp("good") / "good.npz")


def learning_config(**keys) -> str:
    return "[learning]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items())


def journal(state: Path) -> list[tuple[str, str, str]]:
    conn = sqlite3.connect(state / "ledger.sqlite3")
    try:
        return conn.execute(
            "SELECT post_id, outcome, COALESCE(reason, '') FROM learn_journal ORDER BY seq"
        ).fetchall()
    finally:
        conn.close()


def history(cli, json_lines, daemon) -> list[dict]:
    result = cli("model", "history", "--state", daemon.state, "--feed", daemon.feed)
    assert result.exit_code == 0, result.output
    return json_lines(result.output)


def final_model(cli, json_lines, daemon) -> Model:
    latest = history(cli, json_lines, daemon)[-1]
    return Model.load(daemon.state / "models" / latest["file"])


def train_reference(cli, tmp_path: Path, start: Path, posts: list[dict], *extra) -> Model:
    """`banana-monitor train --batch-size 1 --epochs 1 --no-shuffle --model START`."""
    data = tmp_path / "in-order.jsonl"
    data.write_bytes(jsonl(posts))
    out = tmp_path / "trained.npz"
    result = cli("train", "--data", data, "--model", start, "--out", out, "--lr", "0.1",
                 "--batch-size", "1", "--epochs", "1", "--no-shuffle", *extra)
    assert result.exit_code == 0, result.output
    return Model.load(out)


def assert_identical(a: Model, b: Model) -> None:
    assert a.vocabulary.words == b.vocabulary.words and a.classes == b.classes
    for x, y in zip(a.network.weights + a.network.biases, b.network.weights + b.network.biases):
        assert np.array_equal(x, y)


def in_journal_order(state: Path, posts: list[dict]) -> list[dict]:
    by_id = {post["id"]: post for post in posts}
    return [by_id[post_id] for post_id, _, _ in journal(state)]


# ---------------------------------------------------------------- identical to `train`


def test_daemon_learning_equals_train_batch_size_one(daemon_process, start_model, cli,
                                                     json_lines, tmp_path):
    posts = corpus("train")[:210]
    daemon = daemon_process(learning_config(checkpoint_every=50, drift_guard="false"),
                            model=start_model)
    daemon.start("--learn")
    for k in range(7):  # dropped one by one, each learned before the next arrives
        name = f"labelled-{k}.jsonl"
        drop(daemon.feed, name, jsonl(posts[30 * k:30 * (k + 1)]))
        daemon.wait_for(lambda: name in daemon.processed(), what=name)
    assert daemon.signal(signal.SIGTERM) == 0
    rows = journal(daemon.state)
    assert [r[0] for r in rows] == [p["id"] for p in posts]  # in order, each once
    assert {r[1] for r in rows} == {"learned"}
    assert daemon.alert_lines() == []  # labelled posts never alert
    reasons = [v["reason"] for v in history(cli, json_lines, daemon)]
    assert reasons == ["initial"] + ["checkpoint"] * 3 + ["shutdown"]  # at 60, 120, 180
    assert_identical(final_model(cli, json_lines, daemon),
                     train_reference(cli, tmp_path, start_model, posts))
    status = json_lines(cli("status", "--feed", daemon.feed, "--state", daemon.state).output)[0]
    learning = status["learning"]
    assert learning["updates"] == 210 and learning["model_version"] == 5
    assert learning["paused"] is False and set(learning["per_class_recall"]) == {
        "banana", "cookie", "other"}
    assert 0.0 < learning["prequential_accuracy"] <= 1.0
    # restarted with --no-learn, the daemon scores with the latest version, not START
    daemon.start()
    alerts = probe_alerts(daemon, "probe")
    assert alerts and {a["model_version"] for a in alerts} == {5}
    assert as_tuples(alerts) == expected_alerts(final_model(cli, json_lines, daemon), "probe")
    assert daemon.signal(signal.SIGTERM) == 0


def test_daemon_vocabulary_growth_equals_train_with_the_same_cap(daemon_process, start_model,
                                                                cli, json_lines, tmp_path):
    fresh = [{"id": f"new-{i}", "label": ("banana", "cookie", "other")[i % 3],
              "text": " ".join(f"neo{4 * i + j}word" for j in range(4)) + " banana"}
             for i in range(20)]  # 80 words no vocabulary has
    posts = corpus("val")[:100]
    posts[5::5] = fresh[:len(posts[5::5])]
    start = Model.load(start_model)
    cap = len(start.vocabulary) + 60
    daemon = daemon_process(learning_config(drift_guard="false", vocabulary_cap=cap),
                            model=start_model)
    daemon.start("--learn")
    for k in range(3):
        name = f"labelled-{k}.jsonl"
        drop(daemon.feed, name, jsonl(posts[40 * k:40 * (k + 1)]))
        daemon.wait_for(lambda: name in daemon.processed(), what=name)
    assert daemon.signal(signal.SIGTERM) == 0
    learned = final_model(cli, json_lines, daemon)
    assert len(learned.vocabulary) == cap  # new words joined, up to the cap
    assert learned.vocabulary.words[:len(start.vocabulary)] == start.vocabulary.words
    trained = train_reference(cli, tmp_path, start_model, in_journal_order(daemon.state, posts),
                              "--vocab-cap", cap)
    assert_identical(learned, trained)
    default = train_reference(cli, tmp_path, start_model, posts)  # no cap: no growth
    assert default.vocabulary.words == start.vocabulary.words


def started(daemon) -> bool:
    return any(e["event"] == "daemon_started" for e in daemon.events())


def test_kill_9_during_learning_still_learns_each_post_once(daemon_process, start_model, cli,
                                                            json_lines, tmp_path):
    rng = np.random.default_rng(99)
    posts = corpus("train")[:1200]
    files = [posts[100 * k:100 * (k + 1)] for k in range(12)]
    daemon = daemon_process(learning_config(checkpoint_every=150, drift_guard="false"),
                            model=start_model)
    kills = 0
    for k, chunk in enumerate(files):
        name = f"labelled-{k:02d}.jsonl"
        if k % 3 == 0:  # killed while starting: loading, resuming, replaying, the scan
            drop(daemon.feed, name, jsonl(chunk))
            daemon.start("--learn")
            time.sleep(float(rng.uniform(0.2, 2.0)))
        else:  # killed while learning a file (or checkpointing after it)
            daemon.start("--learn")
            daemon.wait_for(lambda: started(daemon), what="daemon_started")
            drop(daemon.feed, name, jsonl(chunk))
            time.sleep(float(rng.uniform(0.0, 1.5)))
        daemon.kill()
        kills += 1
    assert kills >= 10
    daemon.start("--learn")
    daemon.wait_for(lambda: started(daemon), what="the clean run's start-up")
    daemon.wait_for(lambda: len(daemon.processed()) == len(files), timeout=180,
                    what="every file after the kills")
    assert daemon.signal(signal.SIGTERM) == 0
    rows = journal(daemon.state)
    ids = [r[0] for r in rows]
    assert len(ids) == len(set(ids)) == len(posts)  # none twice, none lost
    assert sorted(ids) == sorted(p["id"] for p in posts)
    events = [e for run in range(1, daemon.runs + 1) for e in daemon.events(run)]
    resumed = [e for e in events if e["event"] == "learning_resumed"]
    assert sum(e["replayed"] for e in resumed) > 0  # some kills landed between checkpoints
    assert_identical(final_model(cli, json_lines, daemon),
                     train_reference(cli, tmp_path, start_model,
                                     in_journal_order(daemon.state, posts)))


# ---------------------------------------------------------------- poison and rollback


def probe_alerts(daemon, name: str) -> list[dict]:
    drop(daemon.feed, name, jsonl([{"id": f"{name}-{i}", "text": t} for i, t in enumerate(PROBES)]))
    daemon.wait_for(lambda: name in daemon.processed(), what=name)
    time.sleep(0.5)
    return sorted((a for a in daemon.alert_lines() if a["post_id"].startswith(name)),
                  key=lambda a: (a["post_id"], a["label"]))


def expected_alerts(model: Model, name: str, threshold: float = 0.5) -> list[tuple]:
    names = model.label_names
    probabilities = model.probabilities(PROBES)
    return sorted((f"{name}-{i}", label, float(row[names.index(label)]))
                  for i, row in enumerate(probabilities) for label in ("banana", "cookie")
                  if row[names.index(label)] >= threshold)


def as_tuples(alerts: list[dict]) -> list[tuple]:
    return [(a["post_id"], a["label"], a["score"]) for a in alerts]


def test_flipped_labels_pause_learning_and_rollback_restores(daemon_process, good_model, cli,
                                                             json_lines):
    clean = corpus("val")[:100]
    flip = {"banana": "cookie", "cookie": "banana", "other": "banana"}
    poisoned = [dict(p, id=f"flip-{p['id']}", label=flip[p["label"]]) for p in corpus("val")[100:300]]
    daemon = daemon_process(learning_config(checkpoint_every=50, drift_window=40,
                                            drift_drop=0.4), model=good_model)
    daemon.start("--learn")
    drop(daemon.feed, "clean.jsonl", jsonl(clean))
    daemon.wait_for(lambda: "clean.jsonl" in daemon.processed(), what="clean.jsonl")
    good = history(cli, json_lines, daemon)[-1]
    assert (good["reason"], good["journal_seq"]) == ("checkpoint", 100)
    drop(daemon.feed, "flipped.jsonl", jsonl(poisoned))
    daemon.wait_for(lambda: "flipped.jsonl" in daemon.processed(), what="flipped.jsonl")
    outcomes = [outcome for _, outcome, _ in journal(daemon.state)[100:]]
    assert "paused" in outcomes and outcomes.index("paused") < 60  # the guard fired early
    assert set(outcomes[outcomes.index("paused"):]) == {"paused"}
    status = json_lines(cli("status", "--feed", daemon.feed, "--state", daemon.state).output)[0]
    assert status["learning"]["paused"] is True
    assert "learning.drift_drop" in status["learning"]["paused_reason"]
    assert any(e["event"] == "learning_paused" for e in daemon.events())
    damaged = history(cli, json_lines, daemon)[-1]
    assert damaged["reason"] == "paused"
    damaged_model = Model.load(daemon.state / "models" / damaged["file"])
    good_version = Model.load(daemon.state / "models" / good["file"])
    assert expected_alerts(damaged_model, "p") != expected_alerts(good_version, "p")
    result = cli("model", "rollback", good["version"], "--state", daemon.state,
                 "--feed", daemon.feed)
    assert result.exit_code == 0, result.output
    restored = json_lines(result.output)[0]["version"]
    alerts = probe_alerts(daemon, "after-rollback")  # the running daemon, no restart
    assert as_tuples(alerts) == expected_alerts(good_version, "after-rollback")
    assert {a["model_version"] for a in alerts} == {restored}
    status = json_lines(cli("status", "--feed", daemon.feed, "--state", daemon.state).output)[0]
    assert status["learning"]["paused"] is False
    assert daemon.signal(signal.SIGTERM) == 0


@pytest.mark.parametrize("rate, reason", [("1e6", "max_update_ratio"), ("nan", "NaN")])
def test_absurd_or_nan_learning_rate_is_refused_and_rollback_restores(
        daemon_process, good_model, cli, json_lines, rate, reason):
    daemon = daemon_process(learning_config(learning_rate=rate, max_rejections=5),
                            model=good_model)
    daemon.start("--learn")
    before = probe_alerts(daemon, "before")
    assert before  # the probes do alert
    assert as_tuples(before) == expected_alerts(Model.load(good_model), "before")
    drop(daemon.feed, "labelled.jsonl", jsonl(corpus("val")[:20]))
    daemon.wait_for(lambda: "labelled.jsonl" in daemon.processed(), what="labelled.jsonl")
    rows = journal(daemon.state)
    assert [r[1] for r in rows] == ["rejected"] * 5 + ["paused"] * 15
    assert all(reason in r[2] for r in rows[:5])
    status = json_lines(cli("status", "--feed", daemon.feed, "--state", daemon.state).output)[0]
    assert status["learning"]["paused"] is True and status["learning"]["updates"] == 0
    result = cli("model", "rollback", "1", "--state", daemon.state, "--feed", daemon.feed)
    assert result.exit_code == 0, result.output
    after = probe_alerts(daemon, "after")
    assert as_tuples(after) == expected_alerts(Model.load(good_model), "after")
    assert {a["model_version"] for a in after} == {2}
    assert daemon.signal(signal.SIGTERM) == 0


def test_unknown_label_is_quarantined_with_its_reason(daemon_process, start_model, cli,
                                                      json_lines):
    posts = [{"id": "ok-1", "text": "banana bread again", "label": "banana"},
             {"id": "bad-1", "text": "apple pie for dessert", "label": "pie"},
             {"id": "ok-2", "text": "two cookies and milk", "label": "cookie"}]
    daemon = daemon_process(learning_config(), model=start_model)
    daemon.start("--learn")
    drop(daemon.feed, "mixed.jsonl", jsonl(posts))
    daemon.wait_for(lambda: "mixed.jsonl" in daemon.processed(), what="mixed.jsonl")
    assert daemon.signal(signal.SIGTERM) == 0
    assert [(i, o) for i, o, _ in journal(daemon.state)] == [
        ("ok-1", "learned"), ("bad-1", "quarantined"), ("ok-2", "learned")]
    [reason_file] = (daemon.feed / "quarantine").glob("mixed.jsonl.*.reason.json")
    [error] = json.loads(reason_file.read_text())["errors"]
    assert error["error"].startswith("post bad-1: unknown label 'pie'; the model knows")
    status = json_lines(cli("status", "--feed", daemon.feed, "--state", daemon.state).output)[0]
    assert status["quarantined"]["lines"] == 1
    assert status["learning"]["outcomes"] == {"learned": 2, "quarantined": 1}
