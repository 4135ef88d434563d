"""The fast paths give the same answers as the straightforward ones (issue 7).

- tokenize() (cached matches, plain-ASCII regex) against the original tokenizer;
- bag_of_words (match → ids cache, one-post path) against bag_of_tokens(tokenize());
- word counts / forward_counts / learn_counts / Model.learn_one against the sparse
  1-row path and train.sgd_update, number for number;
- ``score``'s formatted lines against json.dumps;
- ``banana-monitor --help`` imports no numpy, and its command summaries match.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import unicodedata

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.model import Model
from monitor.network import Network
from monitor.text import EMOJI_WORDS, Vocabulary, tokenize

# ---------------------------------------------------------------- the reference tokenizer
# The tokenizer as first written: one regex with a group per kind, a Python loop over
# the matches.  The fast one must agree with it on every text.

_REF_TOKEN = re.compile(
    r"""
      (?:https?://|www\.)\S+
    | \b[\w-]+(?:\.[\w-]+)*\.(?:com|net|org|ly|co|io|me|gl|be)/\S*
    | @\w+
    | \#(\w+)
    | ([^\W_]+(?:['’][^\W_]+)*)
    | ([\u2600-\u27bf\U0001f000-\U0001faff])
    """,
    re.VERBOSE,
)
_REF_CAMEL = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+|[^\W\d_]+")


def _ref_normalize(word: str) -> str:
    word = re.sub(r"['’]", "", unicodedata.normalize("NFKC", word).casefold())
    if len(word) >= 4 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    return word


def reference_tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    for hashtag, word, emoji in _REF_TOKEN.findall(text):
        if word:
            tokens.append(_ref_normalize(word))
        elif hashtag:
            tokens.extend(_ref_normalize(p) for p in (_REF_CAMEL.findall(hashtag) or [hashtag]))
        elif emoji:
            tokens.append(EMOJI_WORDS.get(emoji, emoji))
    return tokens


TRICKY = [
    "",
    "Banana bread!! #BananaBread @baker99 https://t.co/x www.cookie.com/y bit.ly/z",
    "awww.that is www.banana.org and aww.ok",
    "don't cookie's l’amour Straße ＢＡＮＡＮＡ ❶ Ⅻ x² 🍌🍪😀",
    "100% a/b 50/50 e-mail foo_bar __init__ #_ #x_y @_",
    "path/to/file.com/x and sub.domain.co/ hello.world",
    "tabs\tand\nnewlines\r\n#tag\n@me",
    "UPPER lower MiXeD 123abc abc123 a1b2",
]
PIECES = list("aAbB zZ09 #@_'’./:-wht\n") + ["🍌", "🍪", "😀", "❶", "é", "ß", "www.", ".com/", "s"]
TEXTS = st.lists(st.sampled_from(PIECES), max_size=30).map("".join)


@pytest.mark.parametrize("text", TRICKY)
def test_tokenize_matches_reference(text):
    assert tokenize(text) == reference_tokenize(text)


@settings(max_examples=400, deadline=None)
@given(TEXTS)
def test_tokenize_matches_reference_on_any_text(text):
    assert tokenize(text) == reference_tokenize(text)


# ---------------------------------------------------------------- bags of words


@pytest.fixture
def vocabulary() -> Vocabulary:
    words = "banana cookie bread sweet chocolate a the tag baker is www 123abc".split()
    return Vocabulary(words + ["l’amour", "😀", "x"])


def _same_csr(a: sp.csr_matrix, b: sp.csr_matrix) -> bool:
    return (
        a.shape == b.shape
        and a.indptr.tolist() == b.indptr.tolist()
        and a.indices.tolist() == b.indices.tolist()
        and a.data.tolist() == b.data.tolist()
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(TEXTS, min_size=1, max_size=6))
def test_batch_bag_of_words_equals_tokenize_per_post(texts):
    vocabulary = Vocabulary("banana cookie a b z 09 www x".split())
    expected = vocabulary.bag_of_tokens([reference_tokenize(t) for t in texts])
    assert _same_csr(vocabulary.bag_of_words(texts), expected)
    for i, text in enumerate(texts):  # the one-post path gives the batch's row
        assert _same_csr(vocabulary.bag_of_words([text]), expected[i])


PLAIN_OR_NOT = st.lists(
    st.sampled_from(["banana", "Cookie", "a", "b2", "zz", " ", ".", "!", "_", "-", "\t", "\n",
                     "#tag", "@me", "a/b", "www.x", "it's", "’", "🍌", "é", "\x00", "\x01",
                     "bananacookie", "x"]),
    max_size=12,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.lists(PLAIN_OR_NOT, min_size=2, max_size=40))
def test_batch_tokenizer_equals_per_post(texts):
    """The one-pass batch (plain posts translated and split, the rest spliced in, the
    per-post path if a post holds the separator) = bag_of_tokens(tokenize()) per post."""
    vocabulary = Vocabulary("banana cookie a b2 zz tag x é its".split())
    expected = vocabulary.bag_of_tokens([reference_tokenize(t) for t in texts])
    assert _same_csr(vocabulary.bag_of_words(texts), expected)


@pytest.mark.parametrize("text", TRICKY + ["banana banana cookie banana", "x"])
def test_word_counts_are_the_one_post_bag(vocabulary, text):
    bag = vocabulary.bag_of_tokens([reference_tokenize(text)])
    ids, counts = vocabulary.word_counts(text)
    assert ids.tolist() == bag.indices.tolist() and counts.tolist() == bag.data.tolist()
    assert counts.dtype == np.float64


def test_extend_reaches_words_already_seen(vocabulary):
    text = "#BananaSplit with split peas"
    before = vocabulary.bag_of_words([text, text])  # fills the match cache
    assert before.nnz == 2
    vocabulary.extend(["split", "pea"])
    after = vocabulary.bag_of_words([text, text])
    split, pea = vocabulary.index["split"], vocabulary.index["pea"]
    assert after[0].toarray()[0, [split, pea]].tolist() == [2.0, 1.0]
    assert vocabulary.word_counts(text)[1].tolist() == [1.0, 2.0, 1.0]


# ---------------------------------------------------------------- one post at a time


@pytest.fixture(params=["softmax", "sigmoid"])
def model(request, rng) -> Model:
    words = [f"w{i}" for i in range(50)] + ["banana", "cookie"]
    classes = ["banana", "cookie", "other"] if request.param == "softmax" else ["banana"]
    return Model.create(words, [7, 5], classes, rng)


def _posts(rng, model, n=30) -> list[tuple[str, str]]:
    words = model.vocabulary.words + ["unknown"]
    labels = model.label_names
    return [
        (" ".join(rng.choice(words, size=rng.integers(0, 9))), labels[rng.integers(len(labels))])
        for _ in range(n)
    ]


def test_forward_counts_equals_sparse_forward(model, rng):
    network = model.network
    for text, _ in _posts(rng, model):
        bag = model.vocabulary.bag_of_words([text])
        sparse = network.forward(bag)
        fast = network.forward_counts(*model.vocabulary.word_counts(text))
        assert all(np.array_equal(a, b) for a, b in zip(sparse.Z, fast.Z))
        assert np.array_equal(sparse.A[-1], fast.A[-1])
        assert np.array_equal(model.probabilities([text]), model.probabilities_of(bag))


def test_single_and_batch_scores_agree(model, rng):
    texts = [text for text, _ in _posts(rng, model)]
    batch = model.probabilities(texts)
    singles = np.vstack([model.probabilities([t]) for t in texts])
    np.testing.assert_allclose(singles, batch, rtol=1e-12, atol=1e-15)


def test_learn_one_equals_score_then_sgd_update(model, rng):
    """The fused prequential step = probabilities([text]) then train.sgd_update: the
    same kernel, so the same weights bit for bit; the score equals the batch forward
    pass up to rounding (the kernel sums in its own order)."""
    from monitor.train import sgd_update

    twin = Model(model.network.copy(), Vocabulary(model.vocabulary.words), model.classes)
    for text, label in _posts(rng, model, n=60):
        expected_scores = twin.probabilities([text])[0]
        expected_loss = sgd_update(twin, text, label, 0.3)
        scores, loss = model.learn_one(text, label, 0.3)
        np.testing.assert_allclose(scores, expected_scores, rtol=1e-12, atol=1e-15)
        assert loss == expected_loss
    for ours, theirs in zip(model.network.weights + model.network.biases,
                            twin.network.weights + twin.network.biases):
        assert np.array_equal(ours, theirs)
    assert not np.array_equal(model.network.weights[0], Model.create(
        model.vocabulary.words, [7, 5], model.classes, np.random.default_rng(20251121)
    ).network.weights[0])  # it did learn


def test_sgd_step_one_row_equals_general_path(model, rng):
    """A 1-row CSR takes the counts path; a non-canonical one the general path: same step."""
    network, twin = model.network, model.network.copy()
    for text, label in _posts(rng, model):
        bag = model.vocabulary.bag_of_words([text])
        target = [model.label_index(label)]
        doubled = sp.csr_matrix(  # every word listed twice with half its count
            (np.repeat(bag.data / 2, 2), np.repeat(bag.indices, 2), bag.indptr * 2),
            shape=bag.shape,
        )
        assert not doubled.has_canonical_format or bag.nnz == 0
        loss_fast = network.sgd_step(bag, target, 0.2)
        loss_general = twin.sgd_step(doubled, target, 0.2)
        assert loss_fast == pytest.approx(loss_general, rel=1e-12)
    for a, b in zip(network.weights, twin.weights):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_network_copies_weights_once_into_column_major_w1(rng):
    W1 = rng.normal(size=(4, 6))
    network = Network([W1, rng.normal(size=(2, 4))], [np.zeros(4), np.zeros(2)])
    assert network.weights[0].flags.f_contiguous and network.weights[1].flags.c_contiguous
    assert not np.shares_memory(network.weights[0], W1)
    assert np.array_equal(network.weights[0], W1)


# ---------------------------------------------------------------- score output


def test_score_lines_are_json_dumps(cli, tmp_path):
    posts = tmp_path / "posts.jsonl"
    ids = ["plain", 'quo"te', "back\\slash", "ünïcode ✓", "100%", 7, "tab\there"]
    texts = ["banana", "cookie sweet", "", "🍌🍌", "chocolate", "a banana a day", "x"]
    posts.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in zip(ids, texts)))
    model_path = str(tmp_path / "m.npz")
    model = Model.create(["chocolate", "sweet", "banana", "cookie"], [3], ["banana", "c%s", "other"],
                         np.random.default_rng(1))
    model.save(model_path)
    result = cli("score", "--model", model_path, posts)
    assert result.exit_code == 0, result.output
    expected = [{"id": str(i), **line} for i, line in zip(ids, model.score(texts))]
    lines = result.output.splitlines()
    assert [json.loads(line) for line in lines] == expected  # the same values, floats exact
    assert [list(json.loads(line)) for line in lines] == [list(e) for e in expected]
    assert lines[0].startswith('{"id": "plain", "label": ')  # json.dumps's layout


def test_plain_lines_floats_round_trip_exactly():
    """orjson writes each float shortest-round-trip (1e-5, not json's 1e-05): same number."""
    from monitor.commands.score import _plain_lines
    from monitor.posts import Post

    names = ["banana", 'c"%s', "other"]
    probabilities = np.array([[1e-05, 0.1, 0.89999], [5e-324, 1.0, 0.0], [1 / 3, 2 / 3, 1e-300]])
    posts = [Post("p1", ""), Post("ü ✓", ""), Post('q"\\', "")]
    lines = _plain_lines(names, posts, probabilities)
    for post, line, row in zip(posts, lines, probabilities.tolist()):
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        parsed = json.loads(line)
        expected = {"id": post.id, "label": names[int(np.argmax(row))],
                    "scores": dict(zip(names, row))}
        assert parsed == expected
        assert json.dumps(parsed, ensure_ascii=False) == json.dumps(expected, ensure_ascii=False)


# ---------------------------------------------------------------- start-up


def test_help_imports_no_numpy():
    code = (
        "import sys\n"
        "from monitor.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in ('numpy', 'scipy', 'numba') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "score" in result.stdout and "train" in result.stdout
    assert result.stdout.splitlines()[-1] == "[]"


def test_score_one_text_does_not_load_scipy_or_numba():
    # one post goes through the word-counts path: no sparse matrix, so no scipy import;
    # numba (the one-post learning kernels) is for learning only
    code = (
        "import sys\n"
        "from monitor.cli import main\n"
        "try:\n"
        "    main(['score', '--text', 'banana bread for breakfast'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in ('numpy', 'scipy', 'numba') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    first, last = result.stdout.splitlines()[0], result.stdout.splitlines()[-1]
    assert json.loads(first)["label"] == "banana"
    assert last == "['numpy']"


def test_help_summaries_are_the_commands_own(runner):
    import click

    from monitor.cli import COMMANDS, SUMMARIES, main

    ctx = click.Context(main)
    assert set(SUMMARIES) <= set(COMMANDS)
    for name, summary in SUMMARIES.items():
        command = main.get_command(ctx, name)
        assert command.help.split("\n\n")[0].strip() == summary, name
        assert command.short_help is None and not command.hidden
