"""``banana-monitor train``: build or continue a model from labelled JSON Lines posts."""

from __future__ import annotations

import sys
import click

from monitor.commands.common import CommandError, echo_json, load_model
from monitor.commands.model import _csv, _ints
from monitor.train import (
    BATCH_SIZE,
    CLASS_WEIGHTS,
    EPOCHS,
    HIDDEN,
    LEARNING_RATE,
    MIN_COUNT,
    PATIENCE,
    VOCAB_SIZE,
)

NEW_MODEL_ONLY = ("hidden", "vocab_size", "min_count", "classes")


def _sizes(sizes) -> str:
    return ",".join(map(str, sizes))


@click.command()
@click.option("--data", required=True, metavar="FILE.jsonl",
              help='Labelled posts: {"text", "label"} per line.')
@click.option("--out", required=True, metavar="OUT.npz", help="Where to write the model.")
@click.option("--model", "model_path", metavar="IN",
              help="Continue training this model (else build a new one).")
@click.option("--validation", metavar="FILE.jsonl",
              help="Labelled posts scored after each epoch; the best epoch is kept.")
@click.option("--lr", default=LEARNING_RATE, show_default=True,
              type=click.FloatRange(min=0, min_open=True), help="Learning rate η.")
@click.option("--batch-size", default=BATCH_SIZE, show_default=True,
              type=click.IntRange(min=1), help="Posts per SGD step.")
@click.option("--epochs", default=EPOCHS, show_default=True, type=click.IntRange(min=1),
              help="Passes over the data (at most).")
@click.option("--patience", default=PATIENCE, show_default=True, type=click.IntRange(min=0),
              help="With --validation: stop after N epochs without a better one (0: never).")
@click.option("--shuffle/--no-shuffle", default=True, show_default=True,
              help="Shuffle the posts every epoch (else file order).")
@click.option("--seed", type=int,
              help="Seed for initialisation and shuffling; default: random, recorded.")
@click.option("--class-weight", type=click.Choice(CLASS_WEIGHTS),
              help="Default: balanced for a new model, none with --model.")
@click.option("--hidden", help=f"New model: hidden layer sizes.  [default: {_sizes(HIDDEN)}]")
@click.option("--vocab-size", type=click.IntRange(min=1),
              help=f"New model: most frequent words kept.  [default: {VOCAB_SIZE}]")
@click.option("--min-count", type=click.IntRange(min=1),
              help=f"New model: least count of a kept word.  [default: {MIN_COUNT}]")
@click.option("--classes",
              help="New model: class names (one → sigmoid); default: labels seen, other last.")
@click.option("--vocab-cap", default=0, show_default=True, type=click.IntRange(min=0),
              help="With --model: new words join the vocabulary until it has N words, "
                   "as the daemon's learning.vocabulary_cap (0: no growth).")
def train(data, out, model_path, validation, lr, batch_size, epochs, patience, shuffle, seed,
          class_weight, hidden, vocab_size, min_count, classes, vocab_cap) -> None:
    """Train a model on labelled posts and write it to OUT (atomically).

    Prints a JSON summary; logs one "epoch" event per epoch on stderr.
    """
    import numpy as np

    from monitor import train as training

    given = {"hidden": hidden, "vocab_size": vocab_size, "min_count": min_count, "classes": classes}
    if model_path and any(given[name] is not None for name in NEW_MODEL_ONLY):
        used = [f"--{name.replace('_', '-')}" for name in NEW_MODEL_ONLY if given[name] is not None]
        raise CommandError(f"{', '.join(used)} only apply to a new model (without --model)")
    if vocab_cap and not model_path:
        raise CommandError("--vocab-cap applies when continuing a model (with --model)")
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % 2**32)
    rng = np.random.default_rng(seed)
    try:
        examples = training.read_examples(data)
        held_out = training.read_examples(validation) if validation else None
        if model_path:
            model = load_model(model_path)
        else:
            model = training.new_model(
                examples,
                _ints(hidden) if hidden else training.HIDDEN,
                rng,
                _csv(classes) if classes else None,
                vocab_size or training.VOCAB_SIZE,
                min_count or training.MIN_COUNT,
            )
        options = training.Options(
            lr, batch_size, epochs, shuffle,
            class_weight or ("none" if model_path else "balanced"), patience or None,
            vocab_cap,
        )
        training.targets_for(model, examples)  # unknown labels fail before the progress bar
        progress = _progress(len(examples), epochs)
        result = training.fit(model, examples, options, rng, held_out, progress)
    except training.TrainingError as error:
        raise CommandError(str(error)) from None
    model.meta["trained"] = training.trained_meta(
        examples, options, result, seed, held_out, str(model_path) if model_path else None
    )
    model.save(out)
    echo_json(_summary(out, model, result))


def _progress(length: int, epochs: int):
    """One click progress bar per epoch on stderr when it is a terminal; else none."""
    if not sys.stderr.isatty():
        return None
    return lambda epoch: click.progressbar(
        length=length, label=f"epoch {epoch}/{epochs}", file=sys.stderr
    )


def _summary(out, model, result) -> dict:
    trained = model.meta["trained"]
    return {
        "path": str(out),
        "examples": trained["examples"],
        "epochs": trained["epochs"],
        "best_epoch": trained["best_epoch"],
        "loss": result.history[result.best_epoch - 1]["loss"],
        "validation": trained["validation"],
        "seed": trained["seed"],
        "parameters": model.network.n_parameters,
        "layers": model.network.sizes,
        "classes": model.classes,
        "words_added": trained["words_added"],
    }
