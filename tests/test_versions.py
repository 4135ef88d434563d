"""Model versions: checkpoints, retention, `model history`, `model rollback`."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.ledger import Ledger
from monitor.learn import OnlineLearner
from monitor.model import Model
from monitor.versions import VersionError, VersionStore
from tests.test_learn import CLASSES, WORDS, clone, make_posts, observe, settings_for


@pytest.fixture
def state(tmp_path):
    return tmp_path / "state"


@pytest.fixture
def learner(state, rng):
    ledger = Ledger(state)
    model = Model.create(WORDS, [16, 8], CLASSES, rng)
    learner = OnlineLearner(model, ledger, settings_for(state, checkpoint_every=10,
                                                         keep_versions=3))
    learner.resume()
    yield learner
    ledger.close()


def feed(learner, posts):
    for post in posts:
        observe(learner, [post])
        learner.maybe_checkpoint()


def history(learner):
    with learner.ledger.transaction() as conn:
        return learner.store.history(conn)


def test_checkpoints_are_versions_with_journal_seq_and_metrics(learner, rng, state):
    feed(learner, make_posts(25, rng))
    versions = history(learner)
    assert [(v.version, v.reason, v.journal_seq, v.updates) for v in versions] == [
        (1, "initial", 0, 0), (2, "checkpoint", 10, 10), (3, "checkpoint", 20, 20)]
    assert versions[2].metrics["labelled_posts"] == 20
    assert 0.0 <= versions[2].metrics["prequential_accuracy"] <= 1.0
    assert (state / "models" / "v000003.npz").is_file()
    assert Model.load(state / "models" / "v000003.npz").meta["checkpoint"]["journal_seq"] == 20
    shutdown = learner.maybe_checkpoint(force=True)
    assert (shutdown.version, shutdown.reason, shutdown.journal_seq) == (4, "shutdown", 25)
    assert learner.maybe_checkpoint(force=True) is None  # nothing new since


def test_retention_prunes_old_files_but_keeps_the_initial_version(learner, rng, state):
    feed(learner, make_posts(60, rng))
    versions = history(learner)
    assert [v.version for v in versions] == [1, 2, 3, 4, 5, 6, 7]
    available = [v.version for v in versions if not v.pruned]
    assert available == [1, 5, 6, 7]
    assert sorted(p.name for p in (state / "models").glob("*.npz")) == [
        "v000001.npz", "v000005.npz", "v000006.npz", "v000007.npz"]
    with pytest.raises(VersionError, match="pruned"):
        learner.store.load(versions[1])


def test_rollback_is_a_new_version_adopted_by_the_running_learner(learner, rng, state, cli,
                                                                  json_lines):
    feed(learner, make_posts(10, rng))  # version 2 after 10 updates
    probe = ["banana bread smoothie", "cookie oven", "rain news"]
    at_v2 = learner.model.probabilities(probe)
    feed(learner, make_posts(15, rng))  # version 3 + 5 updates not checkpointed
    assert not np.array_equal(learner.model.probabilities(probe), at_v2)
    result = cli("model", "rollback", "2", "--state", state)
    assert result.exit_code == 0, result.output
    [row] = json_lines(result.output)
    assert (row["version"], row["reason"], row["rolled_back_to"], row["journal_seq"]) == (
        4, "rollback", 2, 25)
    assert learner.poll() is True  # the daemon's poll before its next item
    assert learner.version == 4
    assert np.array_equal(learner.model.probabilities(probe), at_v2)
    assert learner.model.version == 4
    # learning continues from the restored weights; nothing before the rollback replays
    more = make_posts(3, rng)
    feed(learner, more)
    expected = Model.load(state / "models" / "v000002.npz")
    from monitor.train import sgd_update

    for post in more:
        sgd_update(expected, post.text, post.label, 0.1)
    assert np.array_equal(learner.model.probabilities(probe), expected.probabilities(probe))
    again = OnlineLearner(clone(learner.base_model), learner.ledger, settings_for(state))
    assert again.resume() == 3
    assert np.array_equal(again.model.probabilities(probe), expected.probabilities(probe))


def test_rollback_without_version_takes_the_one_before_and_clears_a_pause(
        learner, rng, state, cli):
    feed(learner, make_posts(20, rng))
    with learner.ledger.transaction() as conn:
        learner._pause(conn, "test pause")
    result = cli("model", "rollback", "--state", state)
    assert result.exit_code == 0, result.output
    assert learner.poll() and learner.paused is None
    with learner.ledger.transaction() as conn:
        latest = learner.store.latest(conn)
    assert (latest.version, latest.parent) == (4, 2)


def test_history_lists_every_version_as_json_lines(learner, rng, state, cli, json_lines):
    feed(learner, make_posts(10, rng))
    result = cli("model", "history", "--state", state)
    assert result.exit_code == 0, result.output
    rows = json_lines(result.output)
    assert [(r["version"], r["reason"], r["current"], r["available"]) for r in rows] == [
        (1, "initial", False, True), (2, "checkpoint", True, True)]
    assert rows[1]["metrics"]["updates"] == 10


@pytest.mark.parametrize("args, message", [
    (["99"], "no version 99; known versions: [1, 2]"),
    ([], None),
])
def test_rollback_errors_are_one_line(learner, rng, state, cli, args, message):
    feed(learner, make_posts(10, rng))
    result = cli("model", "rollback", *args, "--state", state)
    if message:
        assert result.exit_code == 2
        assert result.output.strip() == f"Error: {message}"
    else:
        assert result.exit_code == 0


def test_history_without_state_is_a_clean_error(tmp_path, cli):
    result = cli("model", "history", "--state", tmp_path / "nothing")
    assert result.exit_code == 2
    assert "no state in" in result.output


def test_store_refuses_a_rollback_before_any_version(tmp_path):
    ledger = Ledger(tmp_path)
    from monitor.learn import create_schema

    ledger.register_schema(create_schema)
    with pytest.raises(VersionError, match="no model versions"):
        with ledger.transaction() as conn:
            VersionStore(tmp_path).restore(conn, None, 0, 0)
    ledger.close()


def test_resume_removes_files_a_kill_left_mid_save(learner, rng, state):
    feed(learner, make_posts(10, rng))
    partial = state / "models" / ".v000003.npz.abc123.tmp"
    partial.write_bytes(b"PK\x03\x04 half a zip")
    learner.resume()
    assert not partial.exists()
    assert (state / "models" / "v000002.npz").is_file()


def test_a_lost_checkpoint_file_resumes_from_the_one_before(learner, rng, state):
    posts = make_posts(25, rng)
    feed(learner, posts)  # versions 2 (10 updates) and 3 (20 updates)
    expected = [p.copy() for p in learner.model.network.weights]
    (state / "models" / "v000003.npz").unlink()  # a disk problem, a careless operator
    again = OnlineLearner(clone(learner.base_model), learner.ledger, settings_for(state))
    assert again.resume() == 15  # from version 2: the journal after it, nothing twice
    assert again.version == 2 and again.poll() is False  # no reload loop
    assert all(np.array_equal(a, b) for a, b in zip(again.model.network.weights, expected))


def test_no_fallback_across_a_rollback(learner, rng, state, cli):
    feed(learner, make_posts(20, rng))
    assert cli("model", "rollback", "2", "--state", state).exit_code == 0
    learner.poll()
    (state / "models" / "v000004.npz").unlink()  # the rollback version
    again = OnlineLearner(clone(learner.base_model), learner.ledger, settings_for(state))
    with pytest.raises(VersionError, match="no readable model version since version 4"):
        again.resume()
