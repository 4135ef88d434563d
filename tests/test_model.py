"""Model files: exact round trips, atomic writes, and loud refusal of bad files."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from monitor import seed
from monitor.model import Model, ModelError, default_model_path, shipped_models_dir
from tests.conftest import MODELS


def _assert_same(a: Model, b: Model) -> None:
    for left, right in zip(a.network.weights + a.network.biases, b.network.weights + b.network.biases):
        assert left.dtype == right.dtype and left.shape == right.shape
        assert left.tobytes() == right.tobytes()
    assert a.vocabulary.words == b.vocabulary.words
    assert a.classes == b.classes and a.network.output == b.network.output
    assert a.meta == b.meta


def test_round_trip_is_bit_for_bit(tmp_path, rng):
    model = Model.create([f"w{i}" for i in range(500)], [30, 20], ["banana", "cookie", "other"], rng)
    model.meta["trained"] = {"examples": 3}
    path = model.save(tmp_path / "m.npz")
    loaded = Model.load(path)
    _assert_same(model, loaded)
    texts = ["w1 w2 w2", "w499 nothing", ""]
    assert np.array_equal(model.probabilities(texts), loaded.probabilities(texts))
    _assert_same(loaded, Model.load(loaded.save(tmp_path / "again.npz")))


def test_file_layout_matches_design(tmp_path):
    path = seed.multiclass_model().save(tmp_path / "m.npz")
    with np.load(path, allow_pickle=False) as npz:
        assert sorted(npz.files) == ["W1", "W2", "W3", "b1", "b2", "b3", "meta"]
        assert npz["W1"].shape == (3, 4) and npz["W3"].shape == (3, 2)
        meta = json.loads(str(npz["meta"]))
    assert meta["vocabulary"] == seed.VOCABULARY
    assert meta["classes"] == ["banana", "cookie", "other"]
    assert meta["output"] == "softmax" and meta["format_version"] == 1


def test_shipped_seed_models_are_the_sheet():
    _assert_same(Model.load(MODELS / "seed-binary.npz"), seed.binary_model())
    _assert_same(Model.load(MODELS / "seed-multiclass.npz"), seed.multiclass_model())
    assert shipped_models_dir() == MODELS
    assert default_model_path() == MODELS / "banana-cookie.npz"


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path, monkeypatch):
    path = seed.binary_model().save(tmp_path / "m.npz")
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        seed.multiclass_model().save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def _write(path, **arrays):
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)
    return path


def _good_arrays():
    return seed.binary_model().arrays()


def test_refuses_pickled_object_arrays(tmp_path):
    arrays = _good_arrays()
    arrays["W1"] = np.array([{"evil": 1}], dtype=object)
    with open(tmp_path / "p.npz", "wb") as handle:
        np.savez(handle, **arrays)  # numpy pickles object arrays
    with pytest.raises(ModelError, match="p.npz: refusing to load"):
        Model.load(tmp_path / "p.npz")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a.update(W2=np.zeros((2, 5))), "W2 has shape"),
        (lambda a: a.update(b1=np.zeros(7)), "b1 has shape"),
        (lambda a: a.pop("b3"), "missing \\['b3'\\]"),
        (lambda a: a.pop("meta"), "missing \\['meta'\\]"),
        (lambda a: a.update(meta=np.array("{not json")), "meta is not valid JSON"),
        (lambda a: a.update(W1=np.full((3, 4), np.nan)), "W1 contains NaN"),
        (lambda a: a.update(W1=np.zeros((3, 4), dtype=np.int64)), "W1 has dtype int64"),
        (lambda a: a.update(W1=np.zeros((3, 5))), "vocabulary has 4 words but W1 has 5"),
        (
            lambda a: a.update(meta=np.array(json.dumps({"format_version": 99}))),
            "unsupported format_version 99",
        ),
    ],
)
def test_refuses_inconsistent_files(tmp_path, change, message):
    arrays = _good_arrays()
    change(arrays)
    path = _write(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ModelError, match=message):
        Model.load(path)


def test_refuses_files_that_are_not_models(tmp_path):
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ModelError, match="text.npz: not a model file"):
        Model.load(tmp_path / "text.npz")
    with pytest.raises(ModelError, match="no such model file"):
        Model.load(tmp_path / "missing.npz")


def test_binary_labels_and_scores():
    model = seed.binary_model()
    assert model.label_names == ["banana", "other"]
    assert model.label_index("banana") == 1 and model.label_index("other") == 0
    with pytest.raises(KeyError, match="unknown label 'cookie'"):
        model.label_index("cookie")
    [result] = model.score(seed.TEXTS[:1])
    assert result["label"] == "banana"
    assert result["scores"]["banana"] == pytest.approx(0.7310585786)
    assert result["scores"]["other"] == pytest.approx(1 - 0.7310585786)
