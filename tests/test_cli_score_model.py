"""``score``, ``model init`` and ``model info`` through the real CLI, seed numbers included."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from monitor import seed
from tests.conftest import MODELS

MULTI = str(MODELS / "seed-multiclass.npz")
BINARY = str(MODELS / "seed-binary.npz")


def _rounded(scores: dict, digits=2) -> list:
    return [round(v, digits) for v in scores.values()]


def test_exercise_1_bag_of_words(cli, json_lines):
    args = ["score", "--model", MULTI, "--bow"] + [a for t in seed.TEXTS for a in ("--text", t)]
    result = cli(*args)
    assert result.exit_code == 0, result.output
    bags = [line["bag_of_words"] for line in json_lines(result.output)]
    assert bags == [{"banana": 1.0}, {"chocolate": 1.0, "sweet": 1.0, "cookie": 1.0}, {"banana": 3.0}]


def test_exercise_2_1_parameters(cli, tmp_path):
    out = tmp_path / "big.npz"
    result = cli(
        "model", "init", out, "--vocabulary", "chocolate,sweet,banana,cookie",
        "--hidden", "300,200", "--classes", "banana",
    )
    assert result.exit_code == 0, result.output
    info = json.loads(cli("model", "info", out).output)
    assert info["parameters"] == 61901
    assert info["layers"] == [4, 300, 200, 1] and info["output"] == "sigmoid"
    assert info["classes"] == ["banana"] and info["vocabulary_size"] == 4


def test_exercise_2_3_binary_score(cli, json_lines):
    [line] = json_lines(cli("score", "--model", BINARY, "--text", seed.TEXTS[0]).output)
    assert line["label"] == "banana"
    assert round(line["scores"]["banana"], 3) == 0.731


def test_exercise_3_2_multiclass_scores(cli, json_lines):
    result = cli("score", "--model", MULTI, "--text", seed.TEXTS[0], "--text", seed.TEXTS[1])
    first, second = json_lines(result.output)
    assert list(first["scores"]) == ["banana", "cookie", "other"]
    assert _rounded(first["scores"]) == [0.71, 0.26, 0.04] and first["label"] == "banana"
    assert _rounded(second["scores"]) == [0.02, 0.98, 0.00] and second["label"] == "cookie"


def test_exercise_4_loss_and_delta(cli, json_lines, tmp_path):
    data = tmp_path / "one.jsonl"
    data.write_text(json.dumps({"id": "t1", "text": seed.TEXTS[0], "label": "banana"}) + "\n")
    [line] = json_lines(cli("score", "--model", MULTI, data).output)
    assert line["id"] == "t1" and round(line["loss"], 2) == 0.35
    assert _rounded(line["delta"]) == [-0.29, 0.26, 0.04]


def test_shipped_model_by_bare_name(cli, json_lines, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    [line] = json_lines(cli("score", "--model", "seed-binary", "--text", "banana").output)
    # a lone "banana" has text 1's bag of words, so it scores the sheet's 0.731
    assert line["label"] == "banana" and round(line["scores"]["banana"], 3) == 0.731


def test_plain_text_and_jsonl_files(cli, json_lines, tmp_path):
    plain = tmp_path / "posts.txt"
    plain.write_text("Banana! Banana! Banana!\n\nI would rather have a sweet chocolate cookie now.\n")
    lines = json_lines(cli("score", "--model", MULTI, plain).output)
    assert [(l["id"], l["label"]) for l in lines] == [("1", "banana"), ("3", "cookie")]
    stdin = '{"id": 7, "text": "cookie", "lang": "en"}\n{"text": "banana"}\n'
    lines = json_lines(cli("score", "--model", MULTI, "-", input=stdin).output)
    assert [l["id"] for l in lines] == ["7", "2"]


def test_custom_text_field(cli, json_lines, tmp_path):
    data = tmp_path / "export.jsonl"
    data.write_text('{"id_str": "99", "full_text": "cookie cookie"}\n')
    result = cli("score", "--model", MULTI, "--text-field", "full_text", "--id-field", "id_str", data)
    [line] = json_lines(result.output)
    assert line["id"] == "99" and line["label"] == "cookie"


def _run(*args, input=None):
    return subprocess.run(
        [sys.executable, "-m", "monitor", *map(str, args)],
        capture_output=True, text=True, input=input, timeout=60,
    )


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda p: ["score", "--model", MULTI, p / "missing.jsonl"], "missing.jsonl: No such file"),
        (lambda p: ["score", "--model", p / "nope.npz", "--text", "x"], "nope.npz: no such model file"),
        (lambda p: ["score", "--model", p / "bad.jsonl", "--text", "x"], "bad.jsonl: not a model file"),
        (lambda p: ["score", "--model", MULTI, p / "bad.jsonl"], "bad.jsonl:2: invalid JSON"),
        (lambda p: ["model", "info", p / "bad.jsonl"], "bad.jsonl: not a model file"),
    ],
)
def test_errors_are_one_clear_line(tmp_path, make_args, message):
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n{"text": broken\n')
    result = _run(*make_args(tmp_path))
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_missing_text_field_names_file_and_line(tmp_path):
    (tmp_path / "p.jsonl").write_text('{"text": "ok"}\n{"body": "no text"}\n')
    result = _run("score", "--model", MULTI, tmp_path / "p.jsonl")
    assert result.returncode == 2 and "p.jsonl:2: missing 'text' field" in result.stderr


def test_model_init_rejects_bad_sizes(cli, tmp_path):
    result = cli("model", "init", tmp_path / "m.npz", "--vocabulary", "a,b", "--hidden", "3,x")
    assert result.exit_code == 2 and "comma-separated integers" in result.output
    result = cli("model", "init", tmp_path / "m.npz", "--vocabulary", "a,A")
    assert result.exit_code == 2 and "duplicates" in result.output


def test_model_init_seed_is_deterministic(cli, tmp_path):
    for name in ("a.npz", "b.npz"):
        assert cli("model", "init", tmp_path / name, "--vocabulary", "x,y,z", "--hidden", "5",
                   "--seed", "3").exit_code == 0
    from monitor.model import Model

    a, b = Model.load(tmp_path / "a.npz"), Model.load(tmp_path / "b.npz")
    assert all((x == y).all() for x, y in zip(a.network.weights, b.network.weights))
