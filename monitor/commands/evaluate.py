"""``banana-monitor evaluate``: a model's accuracy, macro-F1, per-class figures, confusion."""

from __future__ import annotations

import sys

import click

from monitor.commands.common import CommandError, echo_json, load_model


@click.command()
@click.option("--model", "model_path", metavar="PATH", help="Model file (default: shipped).")
@click.option("--data", required=True, metavar="FILE.jsonl",
              help='Labelled posts: {"text", "label"} per line.')
@click.option("--table/--json", "as_table", default=None,
              help="Output format; default: a table on a terminal, JSON otherwise.")
def evaluate(model_path, data, as_table) -> None:
    """Evaluate a model on labelled posts.

    JSON: examples, accuracy, macro_f1, per_class {label: precision, recall, f1,
    support}, confusion {labels, matrix (rows: true label, columns: predicted)} and the
    mean cross-entropy loss.
    """
    from monitor.evaluation import evaluate_model, format_table
    from monitor.train import TrainingError, read_examples, targets_for

    model = load_model(model_path)
    try:
        examples = read_examples(data)
        targets_for(model, examples)  # an unknown label names its line
    except TrainingError as error:
        raise CommandError(str(error)) from None
    report = evaluate_model(model, examples.texts, examples.labels)
    if as_table is None:
        as_table = sys.stdout.isatty()
    if as_table:
        click.echo(format_table(report))
    else:
        echo_json(report)
