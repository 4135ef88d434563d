"""``banana-monitor score``: one JSON line per post with its label and class scores."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from itertools import islice

import click

from monitor.commands.common import CommandError, echo_json, load_model
from monitor.posts import Post

BATCH = 4096


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
    for batch in _batches(posts, BATCH):
        for post, line in zip(batch, _score_batch(model, batch, bow)):
            echo_json({"id": post.id, **line})


def _score_batch(model, batch: list[Post], bow: bool) -> list[dict]:
    bags = model.vocabulary.bag_of_words([post.text for post in batch])
    probabilities = model.probabilities_of(bags)
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
