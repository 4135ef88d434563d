"""TweetEval accuracy benchmark: our defaults against scikit-learn on the same tweets.

For each task (emotion, offensive) this trains ``banana-monitor train`` with its default
settings (train split, val split as --validation; only --seed is given), evaluates on the
test split with ``banana-monitor evaluate``, and in the same run fits scikit-learn's
LogisticRegression and an MLPClassifier with our hidden sizes on CountVectorizer
features of the train split.  It prints test macro-F1 for each, beside the published
TweetEval figures for FastText and an SVM.

    pip install -r bench/requirements.txt
    python bench/tweeteval.py [--data ../shared/data/tweeteval] [--seed 0]
                              [--tasks emotion,offensive]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "tweeteval"
PUBLISHED = {  # TweetEval README leaderboard, test macro-F1 (%)
    "emotion": {"FastText": 65.2, "SVM": 64.7},
    "offensive": {"FastText": 73.4, "SVM": 52.3},
}
SPLITS = ("train", "val", "test")


def read_split(task_dir: Path, split: str) -> tuple[list[str], list[str]]:
    """A split's tweets and label names (via mapping.txt), in file order."""
    mapping = (task_dir / "mapping.txt").read_text().split("\n")
    names = dict(line.split("\t") for line in mapping if line)
    texts = (task_dir / f"{split}_text.txt").read_text(encoding="utf-8").split("\n")
    labels = (task_dir / f"{split}_labels.txt").read_text().split()
    texts = texts[: len(labels)]
    if len(texts) != len(labels):
        sys.exit(f"{task_dir}/{split}: {len(texts)} texts but {len(labels)} labels")
    return [t.strip() for t in texts], [names[label].strip() for label in labels]


def write_jsonl(path: Path, texts: list[str], labels: list[str]) -> Path:
    with open(path, "w", encoding="utf-8") as handle:
        for text, label in zip(texts, labels):
            handle.write(json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n")
    return path


def cli(*args: object) -> dict:
    """Run ``banana-monitor ARGS`` (JSON output); exit with its error if it fails."""
    command = [sys.executable, "-m", "monitor", "--log-level", "warning", *map(str, args)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"banana-monitor {args[0]} failed: {done.stderr.strip()}")
    return json.loads(done.stdout)


def ours(data: dict, seed: int, workdir: Path) -> tuple[float, float, dict]:
    """Test macro-F1 of ``banana-monitor train`` with default flags, seconds, summary."""
    paths = {split: write_jsonl(workdir / f"{split}.jsonl", *data[split]) for split in SPLITS}
    started = time.perf_counter()
    summary = cli("train", "--data", paths["train"], "--validation", paths["val"],
                  "--out", workdir / "model.npz", "--seed", seed)
    seconds = time.perf_counter() - started
    report = cli("evaluate", "--model", workdir / "model.npz", "--data", paths["test"], "--json")
    return report["macro_f1"], seconds, summary


def sklearn_baselines(data: dict, hidden: tuple[int, ...], seed: int) -> dict[str, tuple]:
    """{name: (test macro-F1, seconds)} for LogisticRegression and MLPClassifier."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.neural_network import MLPClassifier

    vectorizer = CountVectorizer()
    X_train = vectorizer.fit_transform(data["train"][0])
    X_test = vectorizer.transform(data["test"][0])
    models = {
        "sklearn LogisticRegression": LogisticRegression(max_iter=2000),
        f"sklearn MLP {','.join(map(str, hidden))}": MLPClassifier(
            hidden_layer_sizes=hidden, random_state=seed
        ),
    }
    results = {}
    for name, model in models.items():
        started = time.perf_counter()
        model.fit(X_train, data["train"][1])
        predicted = model.predict(X_test)
        seconds = time.perf_counter() - started
        results[name] = (f1_score(data["test"][1], predicted, average="macro"), seconds)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="TweetEval directory")
    parser.add_argument("--tasks", default="emotion,offensive")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    tasks = args.tasks.split(",")
    missing = [t for t in tasks if not (args.data / t / "train_text.txt").is_file()]
    if missing:
        sys.exit(f"TweetEval data not found: {args.data}/{{{','.join(missing)}}} "
                 "(expected {train,val,test}_{text,labels}.txt and mapping.txt; use --data DIR)")
    try:
        import sklearn  # noqa: F401
    except ImportError:
        sys.exit("scikit-learn is missing: pip install -r bench/requirements.txt")
    from monitor.train import HIDDEN

    rows = []
    for task in tasks:
        data = {split: read_split(args.data / task, split) for split in SPLITS}
        with tempfile.TemporaryDirectory() as tmp:
            f1, seconds, summary = ours(data, args.seed, Path(tmp))
        row = {"task": task, f"banana-monitor {','.join(map(str, HIDDEN))}": (f1, seconds)}
        row.update(sklearn_baselines(data, HIDDEN, args.seed))
        rows.append(row)
        print(f"# {task}: train {len(data['train'][0])} / val {len(data['val'][0])} / test "
              f"{len(data['test'][0])}; ours: vocabulary {summary['layers'][0]}, epochs "
              f"{summary['epochs']} (best {summary['best_epoch']})", file=sys.stderr)
    print_table(rows)


def print_table(rows: list[dict]) -> None:
    """Markdown table: test macro-F1 (%) per system and task, training seconds in brackets."""
    systems = [k for k in rows[0] if k != "task"]
    print("| system | " + " | ".join(r["task"] for r in rows) + " |")
    print("|---|" + "---|" * len(rows))
    for system in systems:
        cells = [f"{100 * r[system][0]:.1f} ({r[system][1]:.0f} s)" for r in rows]
        print(f"| {system} | " + " | ".join(cells) + " |")
    for name in ("FastText", "SVM"):
        cells = [f"{PUBLISHED[r['task']][name]:.1f} (published)" for r in rows]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
