"""Throughput side by side: banana-monitor vs scikit-learn, River and Vowpal Wabbit.

One command, one run, one process tree, identical input for everyone::

    python bench/perf.py [--score-posts 100000] [--learn-posts 20000] [--repeat 3]

1. generates a reproducible synthetic stream (``--seed``): short posts over a Zipf
   vocabulary of 20,000 words, classes banana / cookie / other at 20 / 20 / 60;
2. prepares the models every system starts from, on the same training posts (ours at
   the default model's hidden sizes and at the seed's 300/200, a scikit-learn
   SGDClassifier; River trains itself inside its script, untimed);
3. scoring: ``banana-monitor score FILE.jsonl`` (the whole process) vs
   ``bench/peers/sklearn_peer.py score`` (the same I/O, HashingVectorizer +
   SGDClassifier in batches of 1000; the whole process) vs River (BagOfWords |
   SoftmaxRegression, predict_one; its scoring loop only, so River is favoured);
4. prequential learning, one post at a time, predict then learn: our learner's step
   vs River learn_one, scikit-learn partial_fit (per post and in batches of 1000) and
   Vowpal Wabbit in-process (``--oaa 3``), each timed over its loop only;
5. prints a table of posts/s (best of ``--repeat`` interleaved rounds), the ratio
   ours / peer, peak RSS of each process and accuracy (a check that everyone did the
   work), plus the load average of this shared machine before and after.

Every system runs in its own child process (``os.wait4`` gives its peak RSS).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEERS = HERE / "peers"
CLASSES = ["banana", "cookie", "other"]
CLASS_SHARES = [0.2, 0.2, 0.6]
VOCABULARY_SIZE = 20_000
TOPIC_WORDS = 300  # per class: words that make a post about bananas / cookies / other
TOPIC_SHARE = 0.25  # chance that a token is drawn from the post's topic words
ZIPF_EXPONENT = 1.1
SEED_HIDDEN = [300, 200]
SKLEARN_PER_POST = 300  # partial_fit per post runs ~100 posts/s: time its first 300 only


# ---------------------------------------------------------------- the stream


def make_vocabulary(rng: np.random.Generator, size: int = VOCABULARY_SIZE) -> list[str]:
    """``size`` distinct lowercase pseudo-words, none ending in "s" (no plural folding)."""
    onsets = list("bcdfghjklmnprtvwz") + ["ch", "sh", "st", "tr", "pl", "br"]
    vowels = list("aeiou") + ["ai", "ee", "oo"]
    codas = ["", "", "n", "r", "l", "t", "k", "m", "nd", "ng"]
    words = {"banana", "cookie"}
    ordered = ["banana", "cookie"]
    while len(ordered) < size:
        syllables = rng.integers(1, 4)
        word = "".join(
            rng.choice(onsets) + rng.choice(vowels) + rng.choice(codas) for _ in range(syllables)
        )
        if word not in words:
            words.add(word)
            ordered.append(word)
    return ordered


def zipf_weights(n: int, exponent: float = ZIPF_EXPONENT) -> np.ndarray:
    """p(rank r) ∝ r^-s over ranks 1..n, shape (n,)."""
    weights = np.arange(1, n + 1, dtype=np.float64) ** -exponent
    return weights / weights.sum()


def make_posts(rng: np.random.Generator, vocabulary: list[str], n_posts: int) -> list[dict]:
    """Short labelled posts: a class, then 4..24 tokens, a quarter from its topic words.

    Topic words are disjoint slices of the vocabulary (banana and cookie lead their
    classes' lists), drawn by their own Zipf law; the rest follow the global Zipf law.
    A few posts carry a hashtag, a mention or a trailing exclamation, as posts do.
    """
    background = zipf_weights(len(vocabulary))
    topic_probability = zipf_weights(TOPIC_WORDS)
    topics = [_topic_ids(k, len(vocabulary)) for k in range(len(CLASSES))]
    labels = rng.choice(len(CLASSES), size=n_posts, p=CLASS_SHARES)
    lengths = rng.integers(4, 25, size=n_posts)
    posts = []
    for i, (k, length) in enumerate(zip(labels, lengths)):
        ids = rng.choice(len(vocabulary), size=length, p=background)
        from_topic = rng.random(length) < TOPIC_SHARE
        ids[from_topic] = topics[k][rng.choice(TOPIC_WORDS, size=from_topic.sum(), p=topic_probability)]
        words = [vocabulary[j] for j in ids]
        posts.append({"id": f"p{i}", "text": _decorate(rng, words), "label": CLASSES[k]})
    return posts


def _topic_ids(k: int, n_vocab: int) -> np.ndarray:
    """Class k's topic words: banana → 0 and 2.., cookie → 1 and ..., other → its own slice."""
    start = 500 + k * TOPIC_WORDS  # leave the most frequent words to the background
    ids = np.arange(start, start + TOPIC_WORDS)
    if k < 2:
        ids[0] = k  # "banana" / "cookie" are their class's most frequent topic word
    return ids % n_vocab


def _decorate(rng: np.random.Generator, words: list[str]) -> str:
    roll = rng.random()
    if roll < 0.1:
        words[-1] = "#" + words[-1]
    elif roll < 0.15:
        words.insert(0, "@user" + str(rng.integers(1000)))
    text = " ".join(words)
    text = text[0].upper() + text[1:]
    return text + ("!" if rng.random() < 0.2 else ".")


def write_jsonl(path: Path, posts: list[dict], with_labels: bool) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for post in posts:
            line = post if with_labels else {"id": post["id"], "text": post["text"]}
            handle.write(json.dumps(line) + "\n")


def generate(directory: Path, seed: int, n_train: int, n_score: int, n_learn: int) -> dict:
    """Write vocabulary.txt, train.jsonl, score.jsonl (no labels), learn.jsonl."""
    rng = np.random.default_rng(seed)
    vocabulary = make_vocabulary(rng)
    (directory / "vocabulary.txt").write_text("\n".join(vocabulary) + "\n")
    paths = {"vocabulary": directory / "vocabulary.txt"}
    for name, n, labelled in (
        ("train", n_train, True),
        ("score", n_score, False),
        ("learn", n_learn, True),
    ):
        paths[name] = directory / f"{name}.jsonl"
        posts = make_posts(rng, vocabulary, n)
        write_jsonl(paths[name], posts, labelled)
        if name == "score":  # keep the truth aside for the accuracy column
            write_jsonl(directory / "score-truth.jsonl", posts, True)
    return paths


# ---------------------------------------------------------------- running systems


def run(argv: list[str], stdout=subprocess.DEVNULL) -> dict:
    """Run a child to completion: wall seconds, peak RSS (MB) and its JSON report."""
    with tempfile.NamedTemporaryFile("r", suffix=".json") as report:
        env = {**os.environ, "BENCH_REPORT": report.name, "PYTHONHASHSEED": "0"}
        start = time.perf_counter()
        child = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.PIPE, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        stderr = child.stderr.read().decode(errors="replace")
        child.stderr.close()
        if child.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({child.returncode}):\n{stderr[-2000:]}")
        text = Path(report.name).read_text()
    result = json.loads(text) if text.strip() else {}
    result.update(wall=wall, peak_mb=usage.ru_maxrss / 1024)
    return result


def accuracy_of_output(output: Path, truth: Path) -> tuple[float, int]:
    """(share of printed labels that match the truth, posts printed), matched by id."""
    labels = {}
    with open(truth, encoding="utf-8") as handle:
        for line in handle:
            post = json.loads(line)
            labels[post["id"]] = post["label"]
    hits = total = 0
    with open(output, encoding="utf-8") as handle:
        for line in handle:
            result = json.loads(line)
            hits += labels[result["id"]] == result["label"]
            total += 1
    return hits / max(total, 1), total


# ---------------------------------------------------------------- the benchmark


def default_hidden() -> list[int]:
    """The shipped default model's hidden sizes, or 64 until it exists."""
    path = ROOT / "models" / "banana-cookie.npz"
    if not path.is_file():
        return [64]
    from monitor.model import Model

    return Model.load(path).network.sizes[1:-1]


def prepare(paths: dict, work: Path, hidden_sizes: dict[str, list[int]], seed: int) -> dict:
    """Models every system starts from, trained on train.jsonl (untimed)."""
    py = sys.executable
    models = {}
    for name, hidden in hidden_sizes.items():
        models[name] = work / f"ours-{name}.npz"
        run([py, str(PEERS / "ours.py"), "train", str(paths["train"]), str(paths["vocabulary"]),
             str(models[name]), ",".join(map(str, hidden)), str(seed)])
    models["sklearn"] = work / "sklearn.npz"
    run([py, str(PEERS / "sklearn_peer.py"), "train", str(paths["train"]), str(models["sklearn"])])
    return models


def scoring_jobs(paths: dict, models: dict, work: Path, hidden_sizes: dict) -> dict:
    py = sys.executable
    cli = str(Path(sys.executable).with_name("banana-monitor"))
    jobs = {
        f"ours {name}": [cli, "score", "--model", str(models[name]), str(paths["score"])]
        for name in hidden_sizes
    }
    jobs["sklearn batch 1000"] = [
        py, str(PEERS / "sklearn_peer.py"), "score", str(models["sklearn"]), str(paths["score"])
    ]
    jobs["river predict_one"] = [
        py, str(PEERS / "river_peer.py"), "score", str(paths["train"]), str(paths["score"])
    ]
    return jobs


def learning_jobs(paths: dict, models: dict, hidden_sizes: dict) -> dict:
    py = sys.executable
    learn = str(paths["learn"])
    jobs = {}
    for name in hidden_sizes:
        for mode in ("learner", "fused"):
            jobs[f"ours {name} {mode}"] = [
                py, str(PEERS / "ours.py"), "prequential", str(models[name]), learn, mode
            ]
    jobs["river learn_one"] = [py, str(PEERS / "river_peer.py"), "prequential", learn]
    jobs["sklearn partial_fit 1"] = [
        py, str(PEERS / "sklearn_peer.py"), "prequential", learn, "1", str(SKLEARN_PER_POST)
    ]
    jobs["sklearn partial_fit 1000"] = [
        py, str(PEERS / "sklearn_peer.py"), "prequential", learn, "1000"
    ]
    jobs["vw --oaa 3"] = [py, str(PEERS / "vw_peer.py"), "prequential", learn]
    return jobs


def measure(jobs: dict, repeat: int, work: Path, truth: Path | None, empty: Path | None) -> dict:
    """Interleaved rounds (everyone once per round), keeping each system's best rate.

    A system timed as a whole process also runs once per round on ``empty`` (no
    posts): its start-up (imports, model load), so that ``steady`` = posts / (wall −
    start-up) is its rate once running.
    """
    best: dict[str, dict] = {}
    for _ in range(repeat):
        for name, argv in jobs.items():
            output = work / "out.jsonl"
            with open(output, "wb") as handle:
                result = run(argv, stdout=handle)
            if truth is not None:
                accuracy, printed = accuracy_of_output(output, truth)
                result.setdefault("posts", printed)
                result["accuracy"] = accuracy
            if "seconds" in result:
                updates = f", {result['updates']:,} updates" if "updates" in result else ""
                result.update(timed="loop" + updates, rate=result["posts"] / result["seconds"])
            else:
                startup = run(argv[:-1] + [str(empty)])["wall"]
                steady = result["posts"] / max(result["wall"] - startup, 1e-9)
                result.update(timed=f"process ({startup:.2f} s start-up; steady {steady:,.0f}/s)",
                              rate=result["posts"] / result["wall"])
            if name not in best or result["rate"] > best[name]["rate"]:
                best[name] = result
    return best


def print_table(title: str, results: dict, references: list[str]) -> None:
    """One row per system; one ratio column per reference row of ours (ours / peer)."""
    print(f"\n{title}")
    heads = "".join(f" {'ours ' + ref.removeprefix('ours ') + ' / peer':>26}" for ref in references)
    print(f"{'system':28} {'posts/s':>9}{heads} {'peak MB':>8} {'acc':>6}  timed")
    for name, r in results.items():
        cells = ""
        for ref in references:
            ratio = "" if name.startswith("ours") else f"{results[ref]['rate'] / r['rate']:.2f}x"
            cells += f" {ratio:>26}"
        accuracy = r.get("accuracy", float("nan"))
        print(
            f"{name:28} {r['rate']:>9,.0f}{cells} {r['peak_mb']:>8.0f} {accuracy:>6.3f}  "
            f"{r['timed']}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--train-posts", type=int, default=20_000)
    parser.add_argument("--score-posts", type=int, default=100_000)
    parser.add_argument("--learn-posts", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=["score", "learn"], help="Run one half only.")
    parser.add_argument("--keep", metavar="DIR", help="Write the data and models here.")
    args = parser.parse_args()

    work = Path(args.keep or tempfile.mkdtemp(prefix="banana-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"load average before: {os.getloadavg()}  cores: {os.cpu_count()}  data: {work}",
          flush=True)
    paths = generate(work, args.seed, args.train_posts, args.score_posts, args.learn_posts)
    hidden_sizes = {"h" + "-".join(map(str, h)): h for h in (default_hidden(), SEED_HIDDEN)}
    models = prepare(paths, work, hidden_sizes, args.seed)
    default = next(iter(hidden_sizes))
    if args.only != "learn":
        jobs = scoring_jobs(paths, models, work, hidden_sizes)
        empty = work / "empty.jsonl"
        empty.write_text("")
        results = measure(jobs, args.repeat, work, work / "score-truth.jsonl", empty)
        title = f"scoring {args.score_posts:,} posts (best of {args.repeat})"
        print_table(title, results, [f"ours {default}"])
    if args.only != "score":
        jobs = learning_jobs(paths, models, hidden_sizes)
        results = measure(jobs, args.repeat, work, None, None)
        title = (
            f"prequential predict+learn, one post at a time, {args.learn_posts:,} posts "
            f"(best of {args.repeat})"
        )
        print_table(title, results, [f"ours {default} learner", f"ours {default} fused"])
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
