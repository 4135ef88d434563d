"""Model files: a network, its vocabulary and classes, in one ``.npz`` (no pickle).

Layout (DESIGN.md): arrays ``W1..WL`` (shape (n_l, n_(l-1)), as in the sheet),
``b1..bL`` and ``meta``, a 0-d string array holding JSON: format_version, vocabulary,
classes, output, version, created_at, trained.  Files are written atomically: a temp
file in the same directory, fsync, rename, fsync of the directory.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Sequence
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from monitor.network import Network
from monitor.text import Vocabulary

FORMAT_VERSION = 1
OTHER = "other"
DEFAULT_MODEL_NAME = "banana-cookie.npz"


class ModelError(Exception):
    """A model file that cannot be used; the message names the file and the problem."""


class Model:
    """A network plus what it needs to read posts: vocabulary, class names, metadata.

    ``classes`` are the output units' names: ``["banana"]`` for a binary model (its one
    sigmoid unit is p(banana), and ``other`` is the complement), or e.g.
    ``["banana", "cookie", "other"]`` for a softmax model.
    """

    def __init__(
        self,
        network: Network,
        vocabulary: Vocabulary,
        classes: Sequence[str],
        meta: dict[str, Any] | None = None,
    ):
        self.network = network
        self.vocabulary = vocabulary
        self.classes = list(classes)
        self.meta = dict(meta or {})
        self.meta.setdefault("version", 1)
        self.meta.setdefault("created_at", _now())
        self._check()

    def _check(self) -> None:
        if len(self.vocabulary) != self.network.sizes[0]:
            raise ModelError(
                f"vocabulary has {len(self.vocabulary)} words but W1 has "
                f"{self.network.sizes[0]} columns"
            )
        if len(set(self.classes)) != len(self.classes):
            raise ModelError(f"classes must be distinct: {self.classes}")
        if self.network.output == "sigmoid" and len(self.classes) != 1:
            raise ModelError("a sigmoid (binary) model has exactly one class")
        if self.network.output == "softmax" and len(self.classes) != self.network.n_outputs:
            raise ModelError(
                f"{len(self.classes)} classes for {self.network.n_outputs} softmax outputs"
            )

    @classmethod
    def create(
        cls,
        vocabulary: Sequence[str],
        hidden: Sequence[int],
        classes: Sequence[str],
        rng: np.random.Generator,
    ) -> Model:
        """A freshly initialised model: one class → sigmoid, several → softmax."""
        vocab = Vocabulary(vocabulary)
        output = "sigmoid" if len(classes) == 1 else "softmax"
        n_out = 1 if output == "sigmoid" else len(classes)
        network = Network.initialize([len(vocab), *hidden, n_out], output, rng)
        return cls(network, vocab, classes)

    # -------------------------------------------------------------- labels

    @property
    def label_names(self) -> list[str]:
        """Every label a post can get: the classes, plus ``other`` for a binary model."""
        if self.network.output == "sigmoid":
            return [self.classes[0], OTHER]
        return list(self.classes)

    def label_index(self, label: str) -> int:
        """A training label → the network's target: class index, or 1/0 for binary."""
        if self.network.output == "sigmoid":
            if label == self.classes[0]:
                return 1
            if label == OTHER:
                return 0
        elif label in self.classes:
            return self.classes.index(label)
        raise KeyError(f"unknown label {label!r}; this model knows {self.label_names}")

    @property
    def version(self) -> int:
        return int(self.meta.get("version", 1))

    # -------------------------------------------------------------- scoring

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """Scores for every label, shape (n_posts, len(label_names)), rows sum to 1."""
        if len(texts) == 1:  # one post (online learning): no sparse matrix, same numbers
            ids, counts = self.vocabulary.word_counts(texts[0])
            return self._with_complement(self.network.predict_proba_counts(ids, counts))
        return self.probabilities_of(self.vocabulary.bag_of_words(texts))

    def probabilities_of(self, bags) -> np.ndarray:
        """The same for bags of words already built, (n_posts, n_vocab)."""
        return self._with_complement(self.network.predict_proba(bags))

    def _with_complement(self, p: np.ndarray) -> np.ndarray:
        """Network output → one column per label: a sigmoid's p gains 1 − p (other)."""
        if self.network.output == "sigmoid":
            return np.hstack([p, 1.0 - p])
        return p

    def learn_one(self, text: str, label: str, learning_rate: float) -> tuple[np.ndarray, float]:
        """Prequential step on one post: (scores before learning, loss), then one SGD step.

        Numbers identical to ``probabilities([text])[0]`` followed by one ``sgd_step`` on
        ``vocabulary.bag_of_words([text])`` (``train.sgd_update``), at the cost of one
        tokenization and one forward pass.  Raises KeyError for an unknown label.
        """
        target = self.label_index(label)
        p, loss, *_ = self.network.learn_ids(self.vocabulary.word_ids(text), target,
                                             float(learning_rate))
        if self.network.output == "sigmoid":
            return self._with_complement(p[None, :])[0], loss
        return p, loss

    def score(self, texts: Sequence[str]) -> list[dict[str, Any]]:
        """Posts → [{"label": best label, "scores": {label: p}}], one per post."""
        return self.results(self.probabilities(texts))

    def results(self, probabilities: np.ndarray) -> list[dict[str, Any]]:
        names = self.label_names
        best = probabilities.argmax(axis=1)
        return [
            {"label": names[k], "scores": dict(zip(names, map(float, row)))}
            for k, row in zip(best, probabilities)
        ]

    # -------------------------------------------------------------- description

    def info(self) -> dict[str, Any]:
        """What ``banana-monitor model info`` prints."""
        sizes = self.network.sizes
        return {
            "parameters": self.network.n_parameters,
            "layers": sizes,
            "hidden": sizes[1:-1],
            "output": self.network.output,
            "classes": self.classes,
            "labels": self.label_names,
            "vocabulary_size": len(self.vocabulary),
            "version": self.version,
            "format_version": FORMAT_VERSION,
            **{k: v for k, v in self.meta.items() if k not in ("version",)},
        }

    # -------------------------------------------------------------- files

    def arrays(self) -> dict[str, np.ndarray]:
        """What goes into the .npz: W1..WL, b1..bL and the JSON ``meta``."""
        meta = {
            **self.meta,
            "format_version": FORMAT_VERSION,
            "vocabulary": self.vocabulary.words,
            "classes": self.classes,
            "output": self.network.output,
        }
        arrays: dict[str, np.ndarray] = {"meta": np.array(json.dumps(meta, ensure_ascii=False))}
        for l, (W, b) in enumerate(zip(self.network.weights, self.network.biases), start=1):
            arrays[f"W{l}"] = W
            arrays[f"b{l}"] = b
        return arrays

    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically: readers see the old file or the new one, never half of one."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, **self.arrays())
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; a model is not a secret
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Model:
        """Read a model file; any problem raises ModelError naming the file."""
        path = Path(path)
        try:
            return _model_from_arrays(_read_npz(path))
        except ModelError as error:
            raise ModelError(f"{path}: {error}") from None


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise ModelError("no such model file")
    with open(path, "rb") as handle:
        if handle.read(4) != b"PK\x03\x04":
            raise ModelError("not a model file (.npz): not a zip archive")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except ValueError as error:  # numpy refuses object (pickled) arrays
        raise ModelError(f"refusing to load: {error}") from None
    except (OSError, zipfile.BadZipFile, EOFError) as error:
        raise ModelError(f"not a model file (.npz): {error}") from None


def _layer_count(arrays: dict[str, np.ndarray]) -> int:
    count = 0
    while f"W{count + 1}" in arrays:
        count += 1
    if count == 0:
        raise ModelError("no weight matrices (W1, W2, ...)")
    expected = {"meta"} | {f"W{l}" for l in range(1, count + 1)} | {
        f"b{l}" for l in range(1, count + 1)
    }
    if set(arrays) != expected:
        missing, extra = expected - set(arrays), set(arrays) - expected
        raise ModelError(f"arrays missing {sorted(missing)} / unexpected {sorted(extra)}")
    return count


def _parse_meta(array: np.ndarray) -> dict[str, Any]:
    if array.dtype.kind != "U" or array.ndim != 0:
        raise ModelError("meta must be a JSON string array")
    try:
        meta = json.loads(str(array))
    except json.JSONDecodeError as error:
        raise ModelError(f"meta is not valid JSON: {error}") from None
    if not isinstance(meta, dict):
        raise ModelError("meta must be a JSON object")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelError(f"unsupported format_version {meta.get('format_version')!r}")
    for key in ("vocabulary", "classes", "output"):
        if key not in meta:
            raise ModelError(f"meta has no {key!r}")
    return meta


def _model_from_arrays(arrays: dict[str, np.ndarray]) -> Model:
    count = _layer_count(arrays)
    meta = _parse_meta(arrays["meta"])
    weights = [arrays[f"W{l}"] for l in range(1, count + 1)]
    biases = [arrays[f"b{l}"] for l in range(1, count + 1)]
    for name, value in zip(
        [f"W{l}" for l in range(1, count + 1)] + [f"b{l}" for l in range(1, count + 1)],
        weights + biases,
    ):
        if value.dtype.kind != "f":
            raise ModelError(f"{name} has dtype {value.dtype}, expected floats")
        if not np.isfinite(value).all():
            raise ModelError(f"{name} contains NaN or infinity")
    try:
        network = Network(weights, biases, meta["output"], copy=False)  # arrays just read
        vocabulary = Vocabulary(meta["vocabulary"])
    except ValueError as error:
        raise ModelError(str(error)) from None
    structural = ("vocabulary", "classes", "output", "format_version")
    extra = {k: v for k, v in meta.items() if k not in structural}
    return Model(network, vocabulary, meta["classes"], extra)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def shipped_models_dir() -> Path:
    """Where the shipped models live: ``models/`` of a checkout or the installed copy."""
    checkout = Path(__file__).resolve().parent.parent / "models"
    if (checkout / DEFAULT_MODEL_NAME).is_file() or (checkout / "seed-binary.npz").is_file():
        return checkout
    return Path(str(resources.files("monitor") / "_models"))


def default_model_path() -> Path:
    """The model ``run`` and ``score`` use when none is given."""
    return shipped_models_dir() / DEFAULT_MODEL_NAME


def resolve_model_path(path: str | os.PathLike | None) -> Path:
    """A user's --model value → a path; a bare shipped name (``seed-binary``) works too."""
    if path is None:
        return default_model_path()
    candidate = Path(path)
    if candidate.exists():
        return candidate
    shipped = shipped_models_dir() / candidate.name
    for option in (shipped, shipped.with_suffix(".npz")):
        if option.is_file() and candidate.parent == Path("."):
            return option
    return candidate
