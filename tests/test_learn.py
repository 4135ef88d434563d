"""The online learner against a real ledger: prequential scoring, exactly-once, guards."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from monitor.learn import (
    LearningConfig,
    OnlineLearner,
    add_words,
    fingerprint,
    grow_vocabulary,
    learning_status,
    read_learning_status,
)
from monitor.ledger import Ledger
from monitor.model import Model
from monitor.posts import Post
from monitor.text import Vocabulary
from monitor.train import Examples, Options, fit, sgd_update

WORDS = ["banana", "bread", "smoothie", "cookie", "chocolate", "oven", "rain", "bus", "news"]
CLASSES = ["banana", "cookie", "other"]


def make_posts(n: int, rng: np.random.Generator, flip: bool = False) -> list[Post]:
    """Separable posts: banana words → banana, cookie words → cookie, else other."""
    groups = {"banana": WORDS[:3], "cookie": WORDS[3:6], "other": WORDS[6:]}
    posts = []
    for i in range(n):
        label = CLASSES[int(rng.integers(3))]
        words = rng.choice(groups[label], size=3)
        if flip:
            label = {"banana": "cookie", "cookie": "banana", "other": "banana"}[label]
        posts.append(Post(id=f"p{i}", text=" ".join(words), label=label))
    return posts


@pytest.fixture
def model(rng) -> Model:
    return Model.create(WORDS, [16, 8], CLASSES, rng)


def settings_for(state, **learning):
    table = {"enabled": True, "learning_rate": 0.1, **learning}
    return SimpleNamespace(
        state=state,
        learning=SimpleNamespace(enabled=table["enabled"], learning_rate=table["learning_rate"]),
        raw={"learning": table},
    )


@pytest.fixture
def make_learner(tmp_path):
    ledgers = []

    def make(model: Model, **learning) -> OnlineLearner:
        ledger = Ledger(tmp_path / "state")
        ledgers.append(ledger)
        learner = OnlineLearner(model, ledger, settings_for(tmp_path / "state", **learning))
        learner.resume()
        return learner

    yield make
    for ledger in ledgers:
        ledger.close()


def observe(learner: OnlineLearner, posts: list[Post]) -> list[dict]:
    with learner.ledger.transaction() as conn:
        return learner.observe(conn, posts)


def clone(model: Model) -> Model:
    return Model(model.network.copy(), Vocabulary(list(model.vocabulary.words)),
                 list(model.classes), dict(model.meta))


def reference(model: Model, posts: list[Post], lr: float = 0.1) -> Model:
    """What `train --batch-size 1 --no-shuffle` does: sgd_update post by post."""
    copy = clone(model)
    for post in posts:
        sgd_update(copy, post.text, post.label, lr)
    return copy


def assert_same_arrays(a: Model, b: Model) -> None:
    for x, y in zip(a.network.weights + a.network.biases, b.network.weights + b.network.biases):
        assert x.shape == y.shape
        assert np.array_equal(x, y)
    assert a.vocabulary.words == b.vocabulary.words
    assert a.classes == b.classes


# ---------------------------------------------------------------- learning


def test_learner_equals_sgd_update_post_by_post(model, make_learner, rng):
    posts = make_posts(40, rng)
    expected = reference(model, posts)
    learner = make_learner(model)
    for start in range(0, 40, 7):  # several transactions, as files arrive
        observe(learner, posts[start:start + 7])
    assert_same_arrays(learner.model, expected)
    assert learner.updates == 40


def test_prequential_score_comes_before_the_step(model, make_learner, rng):
    post = make_posts(1, rng)[0]
    before = model.probabilities([post.text])[0]
    learner = make_learner(model)
    [entry] = observe(learner, [post])
    names = model.label_names
    assert entry["predicted"] == names[int(before.argmax())]
    assert entry["loss"] == pytest.approx(-np.log(before[names.index(post.label)]))
    after = learner.model.probabilities([post.text])[0]
    assert after[names.index(post.label)] > before[names.index(post.label)]


def test_unlabelled_posts_are_ignored(model, make_learner):
    learner = make_learner(model)
    assert observe(learner, [Post("a", "banana bread")]) == []
    assert learner.applied_seq == 0


# ---------------------------------------------------------------- exactly once


def test_resume_replays_the_journal_after_the_last_checkpoint(model, make_learner, rng):
    posts = make_posts(23, rng)
    first = make_learner(clone(model), checkpoint_every=5)
    for post in posts:
        observe(first, [post])
        first.maybe_checkpoint()
    assert first.version is not None
    # "kill -9": no shutdown checkpoint; a new process starts from the same base model
    second = make_learner(clone(model), checkpoint_every=5)
    assert second.applied_seq == 23
    assert second.version == first.version
    assert_same_arrays(second.model, first.model)
    assert_same_arrays(second.model, reference(model, posts))


def test_replay_count_is_the_rows_after_the_checkpoint(model, make_learner, rng):
    posts = make_posts(13, rng)
    first = make_learner(clone(model), checkpoint_every=5)
    for post in posts:
        observe(first, [post])
        first.maybe_checkpoint()
    second = make_learner(clone(model), checkpoint_every=5)
    assert second.resume() == 3  # checkpoints at 5 and 10 updates


def test_a_rolled_back_transaction_is_forgotten(model, make_learner, rng):
    posts = make_posts(10, rng)
    learner = make_learner(clone(model))
    observe(learner, posts[:5])
    with pytest.raises(RuntimeError):
        with learner.ledger.transaction() as conn:
            learner.observe(conn, posts[5:8])  # learned in memory …
            raise RuntimeError("the ledger commit failed")  # … but never committed
    assert learner.poll() is True  # the learner notices and reloads
    observe(learner, posts[8:])
    assert_same_arrays(learner.model, reference(model, posts[:5] + posts[8:]))
    assert learner.applied_seq == 7


# ---------------------------------------------------------------- guards


def test_unknown_label_is_quarantined_and_learns_nothing(model, make_learner):
    learner = make_learner(model)
    before = [w.copy() for w in learner.model.network.weights]
    [entry] = observe(learner, [Post("x", "banana bread", label="pie")])
    assert entry["outcome"] == "quarantined"
    assert "unknown label 'pie'" in entry["reason"]
    assert all(np.array_equal(a, b) for a, b in zip(before, learner.model.network.weights))


def test_unknown_label_adds_a_class_when_configured(model, make_learner, tmp_path):
    learner = make_learner(clone(model), add_classes=True)
    old = learner.model.probabilities(["rain bus"])[0]
    [entry] = observe(learner, [Post("x", "pie crust", label="pie")])
    assert entry["outcome"] == "learned" and entry["new_class"] == "pie"
    assert learner.model.classes == CLASSES + ["pie"]
    new = learner.model.probabilities(["rain bus"])[0]
    assert new[-1] < 0.05 and np.allclose(new[:3], old, atol=0.05)
    again = make_learner(clone(model), add_classes=True)
    assert_same_arrays(again.model, learner.model)


@pytest.mark.parametrize("rate", [float("nan"), float("inf")])
def test_nan_or_inf_update_is_rejected_and_weights_kept(model, make_learner, rng, rate):
    learner = make_learner(model, learning_rate=rate, max_rejections=3)
    before = [p.copy() for p in learner.model.network.weights + learner.model.network.biases]
    entries = observe(learner, make_posts(4, rng))
    assert [e["outcome"] for e in entries] == ["rejected"] * 3 + ["paused"]
    assert "NaN" in entries[0]["reason"] or "nan" in entries[0]["reason"]
    after = learner.model.network.weights + learner.model.network.biases
    assert all(np.array_equal(a, b) for a, b in zip(before, after))
    assert learner.paused and "3 updates in a row rejected" in learner.paused["reason"]


def test_absurd_learning_rate_is_rejected(model, make_learner, rng):
    learner = make_learner(model, learning_rate=1e6)
    before = learner.model.probabilities(["banana cookie rain"])
    entries = observe(learner, make_posts(5, rng))
    assert {e["outcome"] for e in entries} == {"rejected"}
    assert "max_update_ratio" in entries[0]["reason"]
    assert np.array_equal(learner.model.probabilities(["banana cookie rain"]), before)


def test_exploding_loss_is_rejected(model, make_learner, rng):
    learner = make_learner(model, max_loss=1e-9)
    [entry] = observe(learner, make_posts(1, rng))
    assert entry["outcome"] == "rejected" and "exploded" in entry["reason"]


def test_drift_guard_pauses_on_flipped_labels(model, make_learner, rng, tmp_path):
    learner = make_learner(model, drift_window=10, drift_drop=0.3)
    good = observe(learner, make_posts(120, rng))
    assert not learner.paused and all(e["outcome"] == "learned" for e in good)
    poisoned = observe(learner, make_posts(40, rng, flip=True))
    outcomes = [e["outcome"] for e in poisoned]
    assert "paused" in outcomes and outcomes.index("paused") < 15
    assert learner.paused and "learning.drift_drop" in learner.paused["reason"]
    frozen = [w.copy() for w in learner.model.network.weights]
    observe(learner, make_posts(5, rng))
    assert all(np.array_equal(a, b) for a, b in zip(frozen, learner.model.network.weights))
    status = read_learning_status(tmp_path / "state", window=10)
    assert status["paused"] is True and status["updates"] == 120 + outcomes.index("paused")


# ---------------------------------------------------------------- vocabulary growth


def test_grow_vocabulary_adds_zero_columns_up_to_the_cap(model):
    before = model.probabilities(["banana rain"])
    added = grow_vocabulary(model, "Pancakes with banana and maple syrup, pancakes!", cap=12)
    assert added == ["pancake", "with", "and"]
    assert len(model.vocabulary) == 12 and model.network.weights[0].shape[1] == 12
    assert not model.network.weights[0][:, 9:].any()
    assert np.array_equal(model.probabilities(["banana rain"]), before)
    assert grow_vocabulary(model, "maple syrup", cap=12) == []
    assert grow_vocabulary(model, "maple syrup", cap=0) == []


def test_grown_vocabulary_survives_save_and_load(model, tmp_path):
    grow_vocabulary(model, "Crème brûlée #BananaSplit 🍪 don't 日本語 42", cap=100)
    loaded = Model.load(model.save(tmp_path / "m.npz"))
    assert loaded.vocabulary.words == model.vocabulary.words
    assert fingerprint(loaded) == fingerprint(model)


def test_learner_grows_vocabulary_and_replays_it(model, make_learner, rng):
    posts = [Post("a", "banana pancakes", "banana"), Post("b", "oatmeal cookie", "cookie")]
    learner = make_learner(clone(model), vocabulary_cap=11)
    entries = observe(learner, posts)
    assert [e["new_words"] for e in entries] == [["pancake"], ["oatmeal"]]
    expected = clone(model)
    for post in posts:  # the same policy then the same step, as `train` must do
        grow_vocabulary(expected, post.text, 11)
        sgd_update(expected, post.text, post.label, 0.1)
    assert_same_arrays(learner.model, expected)
    assert_same_arrays(make_learner(clone(model), vocabulary_cap=11).model,
                       expected)


GROWING = [Post("g1", "banana pancakes with maple syrup", "banana"),
           Post("g2", "oatmeal raisin cookie and milk", "cookie"),
           Post("g3", "thunder and rain on the bus", "other"),
           Post("g4", "pancakes again, banana pancakes", "banana"),
           Post("g5", "gingerbread cookie with icing", "cookie")]


def test_train_with_the_same_vocabulary_cap_equals_the_learner(model, make_learner, rng):
    posts = make_posts(12, rng) + GROWING + make_posts(12, rng)
    cap = len(model.vocabulary) + 9  # reached during g4/g5: later words are refused
    learner = make_learner(clone(model), vocabulary_cap=cap)
    for start in range(0, len(posts), 5):
        observe(learner, posts[start:start + 5])
    trained = clone(model)
    examples = Examples("mem", [p.text for p in posts], [p.label for p in posts],
                        list(range(1, len(posts) + 1)))
    options = Options(0.1, 1, 1, shuffle=False, class_weight="none", patience=None,
                      vocab_cap=cap)
    result = fit(trained, examples, options, rng)
    assert len(trained.vocabulary) == cap and result.words_added == 9
    assert trained.vocabulary.words[-9:] == ["pancake", "with", "maple", "syrup", "oatmeal",
                                             "raisin", "and", "milk", "thunder"]
    assert_same_arrays(learner.model, trained)
    assert trained.network.weights[0][:, -1].any()  # the new words were learned from


def test_train_without_a_cap_keeps_the_vocabulary_as_the_default_learner(model, make_learner,
                                                                         rng):
    posts = GROWING + make_posts(10, rng)
    learner = make_learner(clone(model))  # learning.vocabulary_cap defaults to 0
    observe(learner, posts)
    trained = clone(model)
    examples = Examples("mem", [p.text for p in posts], [p.label for p in posts],
                        list(range(1, len(posts) + 1)))
    fit(trained, examples, Options(0.1, 1, 1, shuffle=False, patience=None), rng)
    assert trained.vocabulary.words == model.vocabulary.words and len(model.vocabulary) == 9
    assert_same_arrays(learner.model, trained)


def test_add_words_keeps_fortran_order(model):
    add_words(model, ["x1", "x2"])
    assert model.network.weights[0].flags.f_contiguous


# ---------------------------------------------------------------- visibility


def test_status_metrics_are_computed_from_the_journal(model, make_learner):
    learner = make_learner(model, learning_rate=0.0)  # no learning: predictions fixed
    texts = ["banana bread", "cookie oven", "rain bus", "banana smoothie"]
    predicted = [r["label"] for r in model.score(texts)]
    labels = ["banana", "cookie", "other", "cookie"]
    observe(learner, [Post(str(i), t, l) for i, (t, l) in enumerate(zip(texts, labels))])
    hits = [p == l for p, l in zip(predicted, labels)]
    with learner.ledger.transaction() as conn:
        status = learning_status(conn, window=2)
    assert status["labelled_posts"] == 4 and status["updates"] == 4
    assert status["prequential_accuracy"] == pytest.approx(sum(hits) / 4)
    assert status["recent_accuracy"] == pytest.approx(sum(hits[2:]) / 2)
    assert status["per_class_recall"]["banana"] == pytest.approx(float(hits[0]))
    assert status["per_class_recall"]["cookie"] == pytest.approx((hits[1] + hits[3]) / 2)
    assert status["paused"] is False and status["model_version"] == 1


def test_learning_disabled_records_but_does_not_learn(model, make_learner, rng):
    learner = make_learner(model, enabled=False)
    before = learner.model.probabilities(["banana"])
    entries = observe(learner, make_posts(3, rng))
    assert {e["outcome"] for e in entries} == {"skipped"}
    assert np.array_equal(learner.model.probabilities(["banana"]), before)


def test_config_from_settings_and_validation():
    config = LearningConfig.from_settings(settings_for("s", checkpoint_every=7, drift_drop=0.2))
    assert (config.checkpoint_every, config.drift_drop, config.learning_rate) == (7, 0.2, 0.1)
    with pytest.raises(ValueError, match="checkpoint_every"):
        LearningConfig.from_settings(settings_for("s", checkpoint_every=0))


def test_journal_rows_hold_what_replay_needs(model, make_learner, rng):
    learner = make_learner(model, vocabulary_cap=10)
    observe(learner, [Post("a", "banana muffin", "banana")])
    with learner.ledger.transaction() as conn:
        row = conn.execute("SELECT seq, post_id, label, outcome, learning_rate, new_words,"
                           " version FROM learn_journal").fetchone()
    assert row == (1, "a", "banana", "learned", 0.1, json.dumps(["muffin"]), 1)


def test_drift_guard_running_counts_match_a_recount():
    from monitor.guards import DriftGuard

    rng = np.random.default_rng(3)
    guard = DriftGuard(window=7, drop=2.0, reference_windows=3)  # drop 2: never fires
    flags = rng.random(200) < 0.6
    for i, flag in enumerate(flags):
        guard.add([], "x", bool(flag), lambda tokens: ["x"] * len(tokens))
        kept = flags[max(0, i + 1 - 28):i + 1]
        if len(kept) >= 14:
            assert guard.accuracies() == pytest.approx((kept[-7:].mean(), kept[:-7].mean()))
        else:
            assert guard.accuracies() is None


def test_drift_guard_predictions_equal_the_models(model, make_learner, rng):
    """The retention check's batch forward from reused word counts (no re-tokenizing)
    gives the live model's labels, for kept counts, stale ones and journal rows."""
    learner = make_learner(clone(model), vocabulary_cap=12)
    texts = [p.text for p in make_posts(30, rng)] + ["", "nothing known here", "banana banana"]
    vocabulary = learner.model.vocabulary

    def bag(text):  # as _learn keeps it: the bytes of the post's word ids
        return (text, vocabulary.word_ids(text).tobytes(), len(vocabulary))

    bags = [bag(t) for t in texts[:20]]
    bags += [(t, None, -1) for t in texts[20:]]
    observe(learner, [Post("g", "banana pancakes", "banana")])  # grows: bags now stale
    assert len(learner.model.vocabulary) == 10
    names = learner.model.label_names
    expected = [names[k] for k in learner.model.probabilities(texts).argmax(axis=1)]
    assert learner._predict(bags) == expected
    fresh = [bag(t) for t in texts]  # counted with the grown vocabulary: reused as kept
    assert fresh[0][2] == 10 and learner._predict(fresh) == expected
    p = learner.model.probabilities(texts)
    assert len(set(expected)) > 1 or p.max(axis=1).min() < 0.99  # not a constant model
    grown = learner.model.probabilities(["pancakes pancakes rain"])[0]  # a new word in it
    assert learner._predict([("pancakes pancakes rain", None, -1)]) == [
        names[int(grown.argmax())]]
