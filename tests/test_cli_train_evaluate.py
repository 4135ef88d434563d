"""``train`` and ``evaluate`` through the real CLI, the shipped default model included."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from monitor import seed
from monitor.evaluation import metrics
from monitor.model import Model
from monitor.train import read_examples, sgd_update
from tests.conftest import MODELS, ROOT

MULTI = str(MODELS / "seed-multiclass.npz")
CORPUS = ROOT / "corpus" / "banana-cookie"

POSTS = [
    ("banana bread this morning #baking", "banana"),
    ("Cookie Monster is my spirit animal", "other"),
    ("warm cookie straight from the oven 🍪", "cookie"),
    ("ripe bananas for the smoothie", "banana"),
    ("accept all cookies? absolutely not", "other"),
    ("snickerdoodle cookie dough in the fridge", "cookie"),
    ("this party went bananas", "other"),
    ("rain again, staying in", "other"),
]


def _write(path, pairs):
    path.write_text("".join(json.dumps({"text": t, "label": l}) + "\n" for t, l in pairs))
    return path


def _arrays(path) -> list[np.ndarray]:
    model = Model.load(path)
    return model.network.weights + model.network.biases


def _same_arrays(a, b) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def test_exercise_5_through_train(cli, tmp_path):
    data = _write(tmp_path / "one.jsonl", [(seed.TEXTS[0], "banana")])
    out = tmp_path / "out.npz"
    result = cli("train", "--model", MULTI, "--data", data, "--lr", "0.1", "--batch-size", "1",
                 "--epochs", "1", "--no-shuffle", "--out", out)
    assert result.exit_code == 0, result.output
    W1, W2, W3 = Model.load(out).network.weights
    assert np.round(W3, 3).tolist() == [[1.029, 1.029], [-1.026, 1.974], [-0.004, -1.004]]
    assert np.array_equal(W2, seed.W2) and np.array_equal(W1, seed.W1)


def test_evaluate_reports_the_sheets_loss(cli, tmp_path):
    data = _write(tmp_path / "one.jsonl", [(seed.TEXTS[0], "banana")])
    result = cli("evaluate", "--model", MULTI, "--data", data)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert round(report["loss"], 2) == 0.35
    assert report["accuracy"] == 1.0 and report["examples"] == 1
    assert report["confusion"] == {"labels": ["banana", "cookie", "other"],
                                   "matrix": [[1, 0, 0], [0, 0, 0], [0, 0, 0]]}


def test_evaluate_table(cli, tmp_path):
    data = _write(tmp_path / "two.jsonl", [(seed.TEXTS[0], "banana"), (seed.TEXTS[1], "banana")])
    result = cli("evaluate", "--model", MULTI, "--data", data, "--table")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[1].split() == ["banana", "1.000", "0.500", "0.667", "2"]
    assert lines[-3].split() == ["banana", "1", "1", "0"]  # text 2 is predicted cookie


def test_batch_size_one_continuation_equals_sgd_update(cli, tmp_path):
    data = _write(tmp_path / "posts.jsonl", POSTS)
    start = tmp_path / "start.npz"
    words = "banana,cookie,bread,oven,ripe,dough,rain,monster,all,party"
    assert cli("model", "init", start, "--vocabulary", words, "--hidden", "6,5", "--seed", "4").exit_code == 0
    out = tmp_path / "out.npz"
    result = cli("train", "--model", start, "--data", data, "--validation", data, "--lr", "0.2",
                 "--batch-size", "1", "--epochs", "1", "--no-shuffle", "--out", out)
    assert result.exit_code == 0, result.output
    model = Model.load(start)
    for text, label in POSTS:
        sgd_update(model, text, label, 0.2)
    assert _same_arrays(_arrays(out), model.network.weights + model.network.biases)
    assert not _same_arrays(_arrays(out), _arrays(start))
    trained = Model.load(out).meta["trained"]
    assert trained["class_weight"] == "none" and trained["from_model"] == str(start)
    assert trained["examples"] == len(POSTS) and trained["epochs"] == trained["best_epoch"] == 1


def test_seed_makes_runs_identical(cli, tmp_path):
    data = _write(tmp_path / "posts.jsonl", POSTS * 3)
    runs = {}
    for name, run_seed in (("a", 7), ("b", 7), ("c", 8)):
        out = tmp_path / f"{name}.npz"
        result = cli("train", "--data", data, "--out", out, "--seed", run_seed, "--epochs", "3",
                     "--hidden", "8", "--min-count", "1", "--batch-size", "4")
        assert result.exit_code == 0, result.output
        runs[name] = _arrays(out)
    assert _same_arrays(runs["a"], runs["b"])
    assert not _same_arrays(runs["a"], runs["c"])


def test_new_model_summary_and_meta(cli, tmp_path):
    data = _write(tmp_path / "posts.jsonl", POSTS * 3)
    val = _write(tmp_path / "val.jsonl", POSTS[:4])
    out = tmp_path / "m.npz"
    result = cli("train", "--data", data, "--validation", val, "--out", out, "--seed", "1",
                 "--epochs", "4", "--patience", "0", "--hidden", "8,4", "--vocab-size", "5",
                 "--min-count", "1")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["layers"] == [5, 8, 4, 3] and summary["classes"] == ["banana", "cookie", "other"]
    model = Model.load(out)
    trained = model.meta["trained"]
    assert trained["data"] == str(data) and trained["examples"] == 24 and trained["seed"] == 1
    assert trained["epochs"] == 4 and trained["class_weight"] == "balanced"
    assert 1 <= trained["best_epoch"] <= 4 and trained["validation_data"] == str(val)
    kept = trained["history"][trained["best_epoch"] - 1]
    assert trained["validation"]["macro_f1"] == kept["val_macro_f1"] == summary["validation"]["macro_f1"]
    assert model.vocabulary.words[:2] == ["cookie", "banana"]  # the most frequent words


def _run(*args):
    return subprocess.run([sys.executable, "-m", "monitor", *map(str, args)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


@pytest.mark.parametrize(
    ("line", "extra", "message"),
    [
        ('{"text": "pie", "label": "pie"}', ["--model", MULTI], "bad.jsonl:2: unknown label 'pie'"),
        ('{"text": "", "label": "banana"}', [], "bad.jsonl:2: empty text"),
        ('{"text": "banana", "label": ', [], "bad.jsonl:2: invalid JSON"),
        ('{"text": "banana"}', [], "bad.jsonl:2: missing 'label' field"),
    ],
)
def test_bad_training_data_is_one_clear_line(tmp_path, line, extra, message):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "cookie time", "label": "cookie"}\n' + line + "\n")
    result = _run("train", "--data", bad, "--out", tmp_path / "m.npz", *extra)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "m.npz").exists()


def test_unknown_label_in_validation_or_evaluation_data(cli, tmp_path):
    data = _write(tmp_path / "posts.jsonl", POSTS)
    val = _write(tmp_path / "val.jsonl", [("cake", "other"), ("pie", "dessert")])
    result = cli("train", "--data", data, "--validation", val, "--out", tmp_path / "m.npz")
    assert result.exit_code == 2 and "val.jsonl:2: unknown label 'dessert'" in result.output
    result = cli("evaluate", "--model", MULTI, "--data", val)
    assert result.exit_code == 2 and "val.jsonl:2: unknown label 'dessert'" in result.output


def test_new_model_options_conflict_with_model(cli, tmp_path):
    data = _write(tmp_path / "posts.jsonl", POSTS)
    result = cli("train", "--model", MULTI, "--data", data, "--out", tmp_path / "m.npz", "--hidden", "4")
    assert result.exit_code == 2 and "--hidden only apply to a new model" in result.output


def test_diverging_run_leaves_the_old_model_in_place(cli, tmp_path):
    data = _write(tmp_path / "posts.jsonl", POSTS * 4)
    out = tmp_path / "m.npz"
    Model.load(MULTI).save(out)
    before = out.read_bytes()
    result = cli("train", "--data", data, "--out", out, "--lr", "1e200", "--hidden", "8,8",
                 "--min-count", "1", "--seed", "0")
    assert result.exit_code == 2 and "diverged" in result.output
    assert out.read_bytes() == before


def _keyword_rule(text: str) -> str:
    lowered = text.lower()
    return "banana" if "banana" in lowered else "cookie" if "cookie" in lowered else "other"


def test_shipped_model_beats_the_keyword_rule_on_held_out_test(cli):
    test = read_examples(CORPUS / "test.jsonl")
    labels = ["banana", "cookie", "other"]
    truth = [labels.index(l) for l in test.labels]
    keyword = metrics(truth, [labels.index(_keyword_rule(t)) for t in test.texts], labels)
    # the corpus README's figures for the rule, recomputed here
    assert round(keyword["per_class"]["banana"]["f1"], 3) == 0.691
    assert round(keyword["per_class"]["cookie"]["f1"], 3) == 0.679
    result = cli("evaluate", "--data", CORPUS / "test.jsonl")  # no --model: the shipped default
    assert result.exit_code == 0, result.output
    model = json.loads(result.stdout)
    assert model["examples"] == 1000
    for label in ("banana", "cookie"):
        assert model["per_class"][label]["f1"] > keyword["per_class"][label]["f1"] + 0.1
