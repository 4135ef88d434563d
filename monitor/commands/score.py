"""``banana-monitor score``: one JSON line per post with its label and class scores."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from itertools import islice

import click

from monitor.commands.common import CommandError, load_model
from monitor.posts import Post

BATCH = 1024  # posts scored together: big enough for numpy, small enough for RSS


@click.command()
@click.option("--model", "model_path", metavar="PATH", help="Model file (default: shipped).")
@click.option("--text", "texts", multiple=True, metavar="TEXT", help="A post; repeatable.")
@click.option("--text-field", default="text", show_default=True, help="JSON field with the text.")
@click.option("--id-field", default="id", show_default=True, help="JSON field with the id.")
@click.option("--bow", is_flag=True, help="Add each post's bag of words {word: count}.")
@click.argument("source", required=False, metavar="[FILE|-]")
def score(model_path, texts, text_field, id_field, bow, source) -> None:
    """Score posts from --text, FILE or stdin (JSON Lines or plain text, one per line).

    Prints {"id": ..., "label": ..., "scores": {"banana": p, ...}} per post.  A JSON
    post with a "label" also gets its cross-entropy "loss" and the output error
    "delta" (ŷ − y) for that target.
    """
    model = load_model(model_path)
    posts: Iterable[Post] = [Post(str(i), t) for i, t in enumerate(texts, start=1)]
    if source is not None or not texts:
        posts = _read(source or "-", text_field, id_field)
    sys.stdout.flush()
    out = sys.stdout.buffer
    for batch in _batches(posts, BATCH):
        out.write(b"".join(_score_batch(model, batch, bow)))
    out.flush()


def _score_batch(model, batch: list[Post], bow: bool) -> list[bytes]:
    """A batch of posts → their output lines, UTF-8, each ending in a newline."""
    import numpy as np  # here, not at the top: `banana-monitor --help` needs no numpy

    if len(batch) == 1 and not bow and batch[0].label is None:  # `score --text`: one post
        probabilities = model.probabilities([batch[0].text])  # counts path: no scipy import
        if np.isfinite(probabilities).all():
            return _plain_lines(model.label_names, batch, probabilities)
    bags = model.vocabulary.bag_of_words([post.text for post in batch])
    probabilities = model.probabilities_of(bags)
    if not bow and np.isfinite(probabilities).all() and all(p.label is None for p in batch):
        return _plain_lines(model.label_names, batch, probabilities)
    lines = []
    for post, line in zip(batch, _results(model, batch, bags, probabilities, bow)):
        lines.append(json.dumps({"id": post.id, **line}, ensure_ascii=False).encode() + b"\n")
    return lines


def _plain_lines(names: list[str], batch: list[Post], probabilities) -> list[bytes]:
    """The common case, formatted without building a dict per post.

    The same JSON as json.dumps({"id", "label", "scores"}, ensure_ascii=False) (same
    layout, same strings, same floats), written by orjson: the whole batch's scores in
    one call, each float in its shortest round-trip form (``1e-5`` where json writes
    ``1e-05``: the same number).  (n_posts, n_classes) probabilities, all finite.
    """
    import numpy as np
    import orjson

    dumps = orjson.dumps
    scores = b", ".join(dumps(name).replace(b"%", b"%%") + b": %s" for name in names)
    template = b'{"id": %s, "label": %s, "scores": {' + scores + b"}}\n"
    labels = [dumps(name) for name in names]
    best = probabilities.argmax(axis=1).tolist()
    table = dumps(np.ascontiguousarray(probabilities, dtype=np.float64),
                  option=orjson.OPT_SERIALIZE_NUMPY)  # b"[[p, ...],[p, ...]]"
    rows = table[2:-2].split(b"],[")
    return [
        template % (dumps(post.id), labels[k], *row.split(b","))
        for post, k, row in zip(batch, best, rows)
    ]


def _results(model, batch: list[Post], bags, probabilities, bow: bool) -> list[dict]:
    lines = model.results(probabilities)
    for row, (post, line) in enumerate(zip(batch, lines)):
        if bow:
            words = model.vocabulary.words
            bag = bags[row]
            line["bag_of_words"] = {words[i]: float(c) for i, c in zip(bag.indices, bag.data)}
        if post.label is not None:
            line.update(_error_signal(model, bags[row], post))
    return lines


def _error_signal(model, bag, post: Post) -> dict:
    """Cross-entropy and δ^L = ŷ − y for a labelled post (Exercise 4)."""
    try:
        target = model.label_index(post.label)
    except KeyError as error:
        raise CommandError(f"post {post.id}: {error.args[0]}") from None
    network = model.network
    trace = network.forward(bag)
    loss = float(network.losses_from_logits(trace.Z[-1], [target])[0])
    delta = trace.A[-1][0] - network.one_hot([target])[0]
    return {
        "target": post.label,
        "loss": loss,
        "delta": dict(zip(model.classes, map(float, delta))),
    }


def _read(source: str, text_field: str, id_field: str) -> Iterator[Post]:
    from monitor.posts import InputError, read_posts

    name = "<stdin>" if source == "-" else source
    try:
        stream = sys.stdin.buffer if source == "-" else open(source, "rb")
    except OSError as error:
        raise CommandError(f"{source}: {error.strerror}") from None
    with stream:
        try:
            yield from read_posts(stream, name, None, text_field, id_field)
        except InputError as error:
            raise CommandError(str(error)) from None


def _batches(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch
