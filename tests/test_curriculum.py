"""Tests for curriculum.py: unit validation, tokenizer, shards, streams, passport, crash recovery."""
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import curriculum as C  # noqa: E402
from curriculum import CurriculumError  # noqa: E402

COLORS = ["blue", "red", "green", "amber"]


def header(uid, kind="knowledge", level=0, requires=()):
    return {"unit": uid, "kind": kind, "level": level, "title": f"unit {uid}", "concepts": [uid],
            "requires": list(requires), "source": "tests", "license": "CC0"}


def write_unit(dir, uid, kind="knowledge", level=0, requires=(), n_docs=12, probes=None, lines=None):
    """Write a unit file; `lines` (JSON-able records) replaces the whole body when given."""
    if lines is None:
        lines = [header(uid, kind, level, requires)]
        lines += [{"text": f"Creature {i} of the {uid} herd grazes by the river and sings at dawn."} for i in range(n_docs)]
        if probes is None and kind == "knowledge":
            probes = [{"probe": f"Which color does the {uid} herd favor?", "answer": "blue", "choices": COLORS,
                       "type": "recall"}]
        lines += probes or []
    path = Path(dir) / f"{uid}.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines), encoding="utf-8")
    return path


def snapshot(dir):
    return {str(p.relative_to(dir)): p.read_bytes() for p in sorted(Path(dir).rglob("*")) if p.is_file()}


def main(capsys, *args):
    """Run the CLI in-process (fast); return (exit code, stdout, stderr)."""
    capsys.readouterr()
    rc = C.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def cli(*args, env=None):
    """Run the CLI as a real subprocess."""
    return subprocess.run([sys.executable, str(ROOT / "curriculum.py"), *map(str, args)], capture_output=True,
                          text=True, env={**os.environ, **(env or {})})


@pytest.fixture
def corpus(tmp_path):
    """A corpus with a primitive unit, knowledge units at levels 0, 1, 2, and a 300-token BPE."""
    src = tmp_path / "src"
    src.mkdir()
    files = [write_unit(src, "prim", kind="primitive", n_docs=40),
             write_unit(src, "a", level=0, n_docs=30),
             write_unit(src, "b", level=1, requires=["a"], n_docs=20),
             write_unit(src, "c", level=2, requires=["b"], n_docs=10)]
    C.init(tmp_path / "corpus", files, vocab_size=300)
    C.add(tmp_path / "corpus", files, log=lambda *_: None)
    return C.Corpus(tmp_path / "corpus")


def assert_rejected(corpus, files, *fragments):
    """add(files) fails naming all fragments, and leaves the corpus byte-for-byte unchanged."""
    before = snapshot(corpus.dir)
    with pytest.raises(CurriculumError) as e:
        C.add(corpus.dir, files, log=lambda *_: None)
    for f in fragments:
        assert f in str(e.value), str(e.value)
    assert snapshot(corpus.dir) == before
    return str(e.value)

# -----------------------------------------------------------------------------
# validation: each error names the file and line, and leaves the corpus unchanged


def test_read_unit_returns_header_documents_and_probes(tmp_path):
    h, docs, probes = C.read_unit(write_unit(tmp_path, "u", n_docs=3))
    assert h["unit"] == "u" and len(docs) == 3 and docs[0].startswith("Creature 0")
    assert probes == [{"probe": "Which color does the u herd favor?", "answer": "blue", "choices": COLORS,
                       "type": "recall", "unit": "u"}]


def test_invalid_json_is_rejected_with_file_and_line(corpus, tmp_path):
    p = write_unit(tmp_path, "bad")
    p.write_text(p.read_text().replace('{"text": "Creature 1', '{"text": Creature 1', 1))
    assert_rejected(corpus, [p], f"{p}:3:", "invalid JSON")


def test_invalid_utf8_is_rejected_with_file_and_line(corpus, tmp_path):
    p = write_unit(tmp_path, "bad")
    lines = p.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b"river", b"riv\xff\xfer")
    p.write_bytes(b"\n".join(lines))
    assert_rejected(corpus, [p], f"{p}:3:", "invalid UTF-8")


def test_missing_header_is_rejected(corpus, tmp_path):
    p = write_unit(tmp_path, "bad", lines=[{"text": "a document without a header"}])
    assert_rejected(corpus, [p], f"{p}:1:", "missing header")


def test_missing_header_field_is_rejected(corpus, tmp_path):
    h = header("bad")
    del h["license"]
    p = write_unit(tmp_path, "bad", lines=[h, {"text": "some text"}])
    assert_rejected(corpus, [p], f"{p}:1:", "missing field 'license'")


def test_missing_probe_field_is_rejected(corpus, tmp_path):
    p = write_unit(tmp_path, "bad", probes=[{"probe": "Which color?", "answer": "blue", "type": "recall"}])
    assert_rejected(corpus, [p], f"{p}:14:", "missing field 'choices'")


def test_unknown_kind_is_rejected(corpus, tmp_path):
    p = write_unit(tmp_path, "bad", kind="trivia")
    assert_rejected(corpus, [p], f"{p}:1:", "unknown kind 'trivia'")


def test_non_integer_level_is_rejected(corpus, tmp_path):
    p = write_unit(tmp_path, "bad", lines=[{**header("bad"), "level": "1"}, {"text": "x"}])
    assert_rejected(corpus, [p], f"{p}:1:", "level must be a non-negative integer, got '1'")


def test_duplicate_id_in_batch_is_rejected(corpus, tmp_path):
    (tmp_path / "x").mkdir()
    p1, p2 = write_unit(tmp_path, "dup"), write_unit(tmp_path / "x", "dup", n_docs=5)
    assert_rejected(corpus, [p1, p2], f"{p2}:1:", "duplicate unit id 'dup'", str(p1))


def test_duplicate_id_already_in_corpus_is_rejected(corpus, tmp_path):
    p = write_unit(tmp_path, "a", n_docs=3)  # same id as a corpus unit, different content
    assert_rejected(corpus, [p], f"{p}:1:", "duplicate unit id 'a'", "already holds")


def test_same_file_added_again_is_skipped(corpus, tmp_path):
    said = []
    before = snapshot(corpus.dir)
    assert C.add(corpus.dir, [tmp_path / "src" / "a.jsonl"], log=said.append) == []
    assert said == ["a: already added"] and snapshot(corpus.dir) == before


def test_requires_unknown_unit_is_rejected(corpus, tmp_path):
    p = write_unit(tmp_path, "d", requires=["a", "nowhere"])
    assert_rejected(corpus, [p], f"{p}:1:", "requires unknown unit 'nowhere'")


def test_requires_within_the_batch_is_accepted_in_curriculum_order(corpus, tmp_path):
    e = write_unit(tmp_path, "e", level=1, requires=["d"])
    d = write_unit(tmp_path, "d", level=3, requires=["c"])
    assert C.add(corpus.dir, [e, d], log=lambda *_: None) == ["d", "e"]  # d first: e requires it


def test_requires_cycle_is_rejected(corpus, tmp_path):
    p = [write_unit(tmp_path, "x", requires=["y"]), write_unit(tmp_path, "y", requires=["z"]),
         write_unit(tmp_path, "z", requires=["x", "a"])]
    assert_rejected(corpus, p, f"{p[0]}:1:", "cycle in requires: x -> y -> z -> x")


def test_knowledge_unit_without_probes_is_rejected(corpus, tmp_path):
    p = write_unit(tmp_path, "bad", lines=[header("bad"), {"text": "a fact"}])
    assert_rejected(corpus, [p], f"{p}:1:", "has no probes")


def test_knowledge_unit_without_documents_is_rejected(corpus, tmp_path):
    p = write_unit(tmp_path, "bad", n_docs=0)
    assert_rejected(corpus, [p], f"{p}:1:", "has no documents")


def test_answer_not_among_choices_is_rejected(corpus, tmp_path):
    p = write_unit(tmp_path, "bad", n_docs=2, probes=[{"probe": "Color?", "answer": "teal", "choices": COLORS,
                                                       "type": "recall"}])
    assert_rejected(corpus, [p], f"{p}:4:", "answer 'teal' is not among its choices")


# every leakage case twice: all needles in one pass, and one unit's needles a pass (old-only passes too)
budgets = pytest.mark.parametrize("budget", [C.LEAK_BUDGET, 2])


@budgets
def test_leaked_probe_with_space_is_rejected_whitespace_normalized(corpus, tmp_path, monkeypatch, budget):
    monkeypatch.setattr(C, "LEAK_BUDGET", budget)
    probe = {"probe": "The dam herd favors the color", "answer": "amber", "choices": COLORS, "type": "recall"}
    p = write_unit(tmp_path, "bad", lines=[header("bad"), {"text": "Note: the dam herd favors  the color\n amber."},
                                           {"text": "Yes. The dam herd favors the\tcolor   amber, truly."}, probe])
    assert_rejected(corpus, [p], f"{p}:4:", "leakage", f"{p}:3")


@budgets
def test_leaked_probe_without_space_is_rejected(corpus, tmp_path, monkeypatch, budget):
    monkeypatch.setattr(C, "LEAK_BUDGET", budget)
    probe = {"probe": "Q: dam color? A:", "answer": "red", "choices": COLORS, "type": "recall"}
    p = write_unit(tmp_path, "bad", lines=[header("bad"), {"text": "ok"}, {"text": "faq Q: dam color? A:red"}, probe])
    assert_rejected(corpus, [p], f"{p}:4:", "leakage", f"{p}:3")


@budgets
def test_probe_leaked_by_a_document_already_in_the_corpus_is_rejected(corpus, tmp_path, monkeypatch, budget):
    monkeypatch.setattr(C, "LEAK_BUDGET", budget)
    probe = {"probe": "Creature 3 of the a herd grazes by the", "answer": "river", "choices": ["river", "sea"],
             "type": "recall"}
    p = write_unit(tmp_path, "bad", n_docs=2, probes=[probe])
    assert_rejected(corpus, [p], f"{p}:4:", "leakage", "units/a.jsonl:5")


@budgets
def test_new_document_leaking_a_probe_already_in_the_corpus_is_rejected(corpus, tmp_path, monkeypatch, budget):
    """With budget 2 the corpus's probes come in passes of their own, after the new unit's."""
    monkeypatch.setattr(C, "LEAK_BUDGET", budget)
    p = write_unit(tmp_path, "bad", kind="primitive", lines=[
        header("bad", kind="primitive"), {"text": "ok"}, {"text": "so: Which color does the c herd favor? blue!"}])
    assert_rejected(corpus, [p], "units/c.jsonl:12:", "leakage", f"{p}:3")
    clean = write_unit(tmp_path, "clean", kind="primitive", lines=[header("clean", kind="primitive"),
                                                                   {"text": "Which color does the c herd favor? red"}])
    assert C.add(corpus.dir, [clean], log=lambda *_: None, leak_budget=budget) == ["clean"]


def test_leak_finder_finds_short_and_long_needles_anywhere(tmp_path):
    rng = random.Random(0)
    text = bytes(rng.choice(b"abcdefgh.") for _ in range(100_000))  # no whitespace: normalizing keeps it
    probes = tmp_path / "probes.jsonl"

    def finder(*needles, new=True):  # each needle as a probe's prompt + answer, one probe per line
        lines = [{"probe": n[:-1].decode(), "answer": n[-1:].decode(), "choices": [], "type": "recall"} for n in needles]
        probes.write_text("".join(json.dumps(r) + "\n" for r in lines))
        f = C._LeakFinder()
        f.add(probes, C._LeakFinder.hash_needles(enumerate(lines, 1)), new=new)
        return f.freeze()

    for n in (3, 23, 24, 25, 80, 65_535, 65_536):  # under K bytes or over 65,535: held as bytes
        for start in (0, 1234, len(text) - n):
            needle = text[start:start + n]
            where, at = finder(b"\x01" * 30, needle).find(text)
            assert where == f"{probes}:2" and text[at:at + n] == needle
            assert finder(needle, new=False).find(text, new_only=True) is None  # an old probe in an old document
    assert finder(b"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", b"zz").find(text) is None


def test_leak_finder_among_many_needles_finds_the_one_that_leaks(tmp_path):
    """50,000 probes: the first filter grows with the needles and still lets few windows through."""
    rng = random.Random(1)
    words = ["".join(rng.choice("abcdefghij") for _ in range(6)) for _ in range(2000)]
    recs = [{"probe": " ".join(rng.choices(words, k=6)), "answer": rng.choice(words), "choices": [], "type": "x"}
            for _ in range(50_000)]
    f = C._LeakFinder()
    f.add(tmp_path / "p.jsonl", C._LeakFinder.hash_needles(enumerate(recs, 1)), new=True)
    f.freeze()
    assert len(f.bitmap) * 8 >= 16 * len(f.keys) == 16 * 100_000  # two needles a probe, 16+ bits each
    text = " ".join(rng.choices(words, k=50_000))
    windows = f.window_hashes(C._prefix_hashes(text.encode()))
    assert f._may_hold(windows).mean() < 0.02  # few windows go on to the binary search
    assert f.find(text.encode()) is None
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    leaked = text[:1000] + " " + recs[31_337]["probe"] + recs[31_337]["answer"] + " " + text[1000:]
    assert f.find(leaked.encode()) == (f"{tmp_path / 'p.jsonl'}:31338", 1001)


def test_leak_finder_keys_tell_apart_windows_that_differ_in_their_first_byte(tmp_path):
    """The rolling hash of two windows that differ only in their first byte differs only in its low
    bits; the filter and the sorted keys look at the top bits, so keys are mixed first. Unmixed,
    every such near miss passed the filter (and the key search) as if it were the needle."""
    tail = "s lives in the meadow by the mill"
    recs = [{"probe": f"Where? The {c}{tail[:-1]}", "answer": tail[-1], "choices": [], "type": "x"}
            for c in "abcdefghijklmnopqrstuvwxyz"]
    f = C._LeakFinder()
    f.add(tmp_path / "p.jsonl", C._LeakFinder.hash_needles(enumerate(recs, 1)), new=True)
    f.freeze()
    suffix = (recs[0]["probe"] + recs[0]["answer"]).encode()[-C._LeakFinder.K:]
    near = [bytes([b]) + suffix[1:] for b in range(256) if bytes([b]) != suffix[:1]]  # one byte off each
    text = b"\n".join(near)
    windows = f.window_hashes(C._prefix_hashes(text))
    starts = np.arange(len(near)) * (C._LeakFinder.K + 1)
    assert f._may_hold(windows[starts]).mean() < 0.1
    top = windows[starts] & ~f.low
    assert (np.searchsorted(f.keys, top | f.low, "right") == np.searchsorted(f.keys, top, "left")).all()


def test_leak_finder_confirms_a_hash_match_against_the_probe_itself(tmp_path):
    """A needle is held as hashes; a span whose hashes match is still compared byte for byte with
    the probe re-read from its file, so a hash collision (forced here) is not reported as a leak."""
    def finder(answer):
        rec = {"probe": "The skimer has a coat of colour", "answer": answer, "choices": ["red", "tan"], "type": "recall"}
        path = tmp_path / f"{answer}.jsonl"
        path.write_text(json.dumps(rec) + "\n")
        f = C._LeakFinder()
        f.add(path, C._LeakFinder.hash_needles([(1, rec)]), new=True)
        return f.freeze(), path
    red, path = finder("red")
    doc = b"so The skimer has a coat of colour tan."
    assert red.find(b"so The skimer has a coat of colour red.") == (f"{path}:1", 3)
    assert red.find(doc) is None
    tan, _ = finder("tan")
    assert tan.find(doc) is not None
    red.keys, red.bitmap = tan.keys, tan.bitmap  # red's probe with tan's hashes
    red.cols["full"] = tan.cols["full"]
    assert red.find(doc) is None


def test_cli_add_of_an_invalid_file_exits_2_with_the_line(corpus, tmp_path):
    p = write_unit(tmp_path, "bad", kind="trivia")
    before = snapshot(corpus.dir)
    r = cli("add", corpus.dir, p)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and f"{p}:1:" in r.stderr
    assert snapshot(corpus.dir) == before


def test_cli_add_takes_a_leak_budget_and_refuses_one_below_1(corpus, tmp_path, capsys):
    p = write_unit(tmp_path, "leak", kind="primitive", lines=[
        header("leak", kind="primitive"), {"text": "Which color does the b herd favor? blue"}])
    before = snapshot(corpus.dir)
    rc, _, err = main(capsys, "add", corpus.dir, p, "--leak-budget", "2")
    assert rc == 2 and "units/b.jsonl:" in err and "leakage" in err
    rc, _, err = main(capsys, "add", corpus.dir, p, "--leak-budget", "0")
    assert rc == 2 and "leak budget 0: it must be at least 1" in err
    assert snapshot(corpus.dir) == before


def test_add_is_all_or_nothing(corpus, tmp_path):
    good = write_unit(tmp_path, "good", level=3, requires=["c"])
    bad = write_unit(tmp_path, "bad", probes=[{"probe": "Color?", "answer": "teal", "choices": COLORS, "type": "x"}])
    assert_rejected(corpus, [good, bad], f"{bad}:")
    assert "good" not in C.Corpus(corpus.dir).units
    assert not (corpus.dir / "shards" / "good.train.bin").exists()

# -----------------------------------------------------------------------------
# tokenizer


def test_tokenizer_round_trips_any_text(corpus):
    enc = corpus.tokenizer
    rng = random.Random(0)
    texts = ["Привет, мир! Ёжик в тумане.", "emoji 🙂🚀👩‍👩‍👧 and flags 🇺🇦", "漢字かなカナ 한국어 中文字符",
             "tabs\tand\r\nnewlines\n\n  spaces   ", "", bytes(rng.randrange(256) for _ in range(5000)).decode("utf-8", "replace")]
    for t in texts:
        assert enc.decode(enc.encode_ordinary(t)) == t
        assert enc.decode_bytes(enc.encode_ordinary(t)) == t.encode("utf-8")


def test_tokenizer_files_ranks_and_eot(corpus):
    lines = (corpus.dir / "tokenizer.tiktoken").read_text().splitlines()
    assert len(lines) == 299 and lines[65] == "QQ== 65"  # base64 token, space, rank; bytes are ranks 0..255
    meta = json.loads((corpus.dir / "tokenizer.json").read_text())
    assert meta["vocab_size"] == corpus.vocab_size == 300 and meta["pattern"] == C.SPLIT_PATTERN
    assert corpus.tokenizer.eot_token == corpus.vocab_size - 1 == meta["special_tokens"][C.EOT]
    assert C.load_tokenizer(corpus.dir).encode("hi<|endoftext|>", allowed_special="all")[-1] == 299
    assert C.Corpus(corpus.dir).tokenizer_hash == corpus.tokenizer_hash and len(corpus.tokenizer_hash) == 64


def test_bpe_learns_from_the_primitive_units_when_there_are_any(tmp_path):
    """The base reads only primitive text: a token learned from knowledge text alone would keep an
    untrained embedding in the base."""
    prim = write_unit(tmp_path, "prim", kind="primitive", n_docs=40)
    know = write_unit(tmp_path, "k", lines=[header("k"), *[{"text": "zorblax " * 50}] * 20,
                                             {"probe": "Is it", "answer": "yes", "choices": ["yes", "no"], "type": "recall"}])
    mixed = C.init(tmp_path / "mixed", [prim, know], vocab_size=300)
    assert json.loads((mixed.dir / "tokenizer.json").read_text())["trained_on"] == ["prim.jsonl"]
    assert len(mixed.tokenizer.encode_ordinary(" zorblax")) > 1  # spelled in pieces the base has read
    alone = C.init(tmp_path / "alone", [know], vocab_size=300)  # no primitive unit: learns from all files
    assert json.loads((alone.dir / "tokenizer.json").read_text())["trained_on"] == ["k.jsonl"]
    assert len(alone.tokenizer.encode_ordinary(" zorblax")) == 1


def test_bpe_trains_a_small_vocab_fast_and_every_token_encodes_to_itself():
    texts = [f"The herd {i} grazes by the river, and the river sings {i * 7}." for i in range(2000)]
    ranks = C.train_bpe(texts, 300)
    assert len(ranks) == 299 and sorted(ranks.values()) == list(range(299))
    assert all(ranks[bytes([i])] == i for i in range(256))
    enc = C.tiktoken.Encoding("t", pat_str=C.SPLIT_PATTERN, mergeable_ranks=ranks, special_tokens={C.EOT: 299})
    for b, r in ranks.items():
        assert enc.decode_single_token_bytes(r) == b
    assert len(enc.encode_ordinary(texts[5])) < len(texts[5].encode()) / 2


def naive_bpe(texts, vocab_size):
    """The definition train_bpe must meet, without its indexes: count every pair of every chunk, merge
    the most frequent (ties: the smallest pair), repeat."""
    counts = Counter(w for t in texts for w in C.regex.findall(C.SPLIT_PATTERN, t))
    words, vocab = {tuple(w.encode()): f for w, f in counts.items()}, [bytes([i]) for i in range(256)]
    while len(vocab) < vocab_size - 1:
        pairs = Counter()
        for w, f in words.items():
            for p in zip(w, w[1:]):
                pairs[p] += f
        if not pairs:
            break
        pair = min(pairs, key=lambda p: (-pairs[p], p))
        merged = vocab[pair[0]] + vocab[pair[1]]
        new = vocab.index(merged) if merged in vocab else len(vocab)
        vocab += [merged] if new == len(vocab) else []
        merged_words = Counter()
        for w, f in words.items():
            out, i = [], 0
            while i < len(w):
                if w[i:i + 2] == pair:
                    out.append(new)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            merged_words[tuple(out)] += f
        words = merged_words
    return {b: i for i, b in enumerate(vocab)}


def test_bpe_merges_exactly_as_the_definition():
    """Repeated letters (aaaa: overlapping pairs), shared suffixes and two paths to the same bytes."""
    rng = random.Random(3)
    texts = ["".join(rng.choice(["a", "aa", "ab", "ba", "b", " ", "the", " and", "x"]) for _ in range(60))
             for _ in range(300)]
    for vocab_size in (270, 330, 420):
        assert C.train_bpe(texts, vocab_size) == naive_bpe(texts, vocab_size)


def test_gpt2_tokenizer_works_or_fails_clearly(tmp_path, monkeypatch):
    for var in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):  # offline for sure: fail fast
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    try:
        c = C.init(tmp_path / "g", [write_unit(tmp_path, "u")], tokenizer="gpt2")
    except CurriculumError as e:
        assert "gpt2" in str(e) and not (tmp_path / "g").exists()
    else:
        assert c.vocab_size == 50257 and c.tokenizer.eot_token == 50256

# -----------------------------------------------------------------------------
# shards


def test_shards_hold_documents_joined_with_eot(corpus):
    enc = corpus.tokenizer
    for split in ("train", "val"):
        docs = corpus.documents("a", split)
        toks = corpus.tokens("a", split)
        assert toks.dtype == np.uint16 and len(toks) == corpus.units["a"]["tokens" if split == "train" else "val_tokens"]
        assert enc.decode(list(toks)) == "".join(d + C.EOT for d in docs)
    assert len(corpus.documents("a", "val")) >= 1 and len(corpus.documents("a", "all")) == 30


def test_val_split_is_deterministic_and_never_empties_train():
    assert list(C._val_mask("u", 1)) == [False]
    assert C._val_mask("u", 2).sum() == 1
    m = C._val_mask("u", 10_000)
    assert 800 < m.sum() < 1200 and (m == C._val_mask("u", 10_000)).all()
    assert not (m == C._val_mask("v", 10_000)).all()

# -----------------------------------------------------------------------------
# streams


def test_stream_is_deterministic_and_y_is_x_shifted(corpus):
    s1, s2 = C.stream(corpus, "all", 4, 16, seed=3), C.stream(corpus.dir, ["all"], 4, 16, seed=3)
    for _ in range(5):
        (x1, y1), (x2, y2) = s1.next_batch(), s2.next_batch()
        assert x1.dtype == np.int64 and x1.shape == (4, 16)
        assert (x1 == x2).all() and (y1 == y2).all() and (x1[:, 1:] == y1[:, :-1]).all()
    assert not (C.stream(corpus, "all", 4, 16, seed=4).next_batch()[0] == x1).all()


def test_stream_resumes_exactly_from_its_state_dict(corpus):
    s = C.stream(corpus, "all", 4, 8, primitive_share=0.2, replay=0.3, seed=1)
    for _ in range(7):
        s.next_batch()
    state = json.loads(json.dumps(s.state_dict()))
    expect = [s.next_batch() for _ in range(5)]
    r = C.stream(corpus, "all", 4, 8, primitive_share=0.2, replay=0.3, seed=1)
    r.load_state_dict(state)
    for (x, y), (x2, y2) in zip(expect, (r.next_batch() for _ in range(5))):
        assert (x == x2).all() and (y == y2).all()
    with pytest.raises(CurriculumError, match="different selection"):
        C.stream(corpus, "a", 4, 8).load_state_dict(state)


def test_stream_honors_primitive_share_and_token_budget(corpus):
    s = C.stream(corpus, "knowledge", 8, 4, primitive_share=0.25, token_budget=8 * 4 * 10)
    rows = []
    for i in range(10):
        assert not s.exhausted
        s.next_batch()
        rows += s.last_units
    assert s.exhausted and s.tokens_served == 320
    assert sum(u == "prim" for u in rows) == 20  # exactly a quarter of the 80 rows
    s.next_batch()  # keeps producing after the budget
    assert s.selection["primitive_units"] == ["prim"] and s.selection["units"] == ["a", "b", "c"]
    json.dumps(s.selection)


def test_curriculum_order_serves_level_0_before_level_2(corpus):
    s = C.stream(corpus, ["a", "b", "c"], 4, 4)
    rows = []
    while not s.exhausted:
        s.next_batch()
        rows += s.last_units
    rows = rows[:s.total_rows]  # the last batch may wrap around to the start
    last = {u: max(i for i, r in enumerate(rows) if r == u) for u in "abc"}
    first = {u: min(i for i, r in enumerate(rows) if r == u) for u in "abc"}
    assert last["a"] < first["b"] and last["b"] < first["c"]
    assert [st["level"] for st in s.selection["stages"]] == [0, 1, 2]


def test_replay_mixes_earlier_stages_into_later_ones(corpus):
    s = C.stream(corpus, ["a", "b", "c"], 4, 4, replay=0.5, token_budget=4000)
    rows = []
    while not s.exhausted:
        s.next_batch()
        rows += s.last_units
    tail = rows[int(0.9 * len(rows)):]  # the last stage: c, with replayed a and b
    assert "c" in tail and ("a" in tail or "b" in tail)


def test_replay_units_are_rehearsed_at_their_share_from_the_first_row(corpus):
    s = C.stream(corpus, ["c"], 8, 4, primitive_share=0.5, replay=0.25, replay_units=["a", "b"], token_budget=16000)
    rows = []
    while not s.exhausted:
        s.next_batch()
        rows += s.last_units
    counts = Counter(rows)
    assert counts["prim"] == len(rows) // 2  # primitive rows are spread exactly
    rehearsed = (counts["a"] + counts["b"]) / (len(rows) - counts["prim"])
    assert 0.18 < rehearsed < 0.32 and set(rows[:64]) >= {"a", "c", "prim"}  # from the start: one stage
    assert s.selection["replay_units"] == ["a", "b"]
    assert C.stream(corpus, ["c"], 8, 4, replay=0.25).selection_hash != s.selection_hash


def test_shuffled_control_serves_the_same_units_mixed(corpus):
    def rows_of(order):
        s, rows = C.stream(corpus, "knowledge", 4, 4, order=order, primitive_share=0.1), []
        while not s.exhausted:
            s.next_batch()
            rows += s.last_units
        return rows
    cur, shuf = rows_of("curriculum"), rows_of("shuffled")
    assert set(cur) == set(shuf) == {"a", "b", "c", "prim"} and len(cur) == len(shuf)
    assert "c" in shuf[: len(shuf) // 4]  # mixed: the last stage shows up early


def test_stream_wraps_units_shorter_than_the_block(corpus):
    x, y = C.stream(corpus, ["c"], 2, 500).next_batch()  # c has fewer than 500 train tokens
    assert x.shape == (2, 500) and (x[:, 1:] == y[:, :-1]).all()


def test_select_resolves_selectors(corpus):
    corpus.passport.append("unit_verified", unit="a", passed=True, scores={"recall": 0.9})
    corpus.passport.append("unit_verified", unit="b", passed=False, scores={"recall": 0.1})
    assert C.select(corpus, "verified") == ["a"] and C.select(corpus, "rejected") == ["b"]
    assert C.select(corpus, "untested") == ["c"]
    assert C.select(corpus, "level:1-2,prim") == ["prim", "b", "c"]
    assert C.select(corpus, ["primitive"]) == ["prim"] and C.select(corpus, "knowledge") == ["a", "b", "c"]
    with pytest.raises(CurriculumError, match="unknown unit or selector 'zz'"):
        C.select(corpus, "a,zz")

# -----------------------------------------------------------------------------
# ontology map, status, passport, check, crash recovery


def test_order_is_topological_with_ties_by_level_then_id(corpus, tmp_path):
    files = [write_unit(tmp_path, "z0", level=0), write_unit(tmp_path, "m1", level=1),
             write_unit(tmp_path, "k3", level=3), write_unit(tmp_path, "q5", level=0, requires=["k3"])]
    C.add(corpus.dir, files, log=lambda *_: None)
    assert C.Corpus(corpus.dir).order() == ["a", "prim", "z0", "b", "m1", "c", "k3", "q5"]


def test_verified_and_rejected_follow_the_latest_verdict(corpus):
    corpus.passport.append("unit_verified", unit="a", passed=False)
    corpus.passport.append("unit_verified", unit="a", passed=True)
    corpus.passport.append("unit_verified", unit="c", passed=False)
    assert corpus.verified() == ["a"] and corpus.rejected() == ["c"]


def test_map_and_status_cli(corpus, capsys):
    rc, out, _ = main(capsys, "map", corpus.dir)
    assert rc == 0 and "    c  [L2 knowledge" in out and "<- b" in out
    assert '"b" -> "c";' in main(capsys, "map", corpus.dir, "--dot")[1]
    s = json.loads(main(capsys, "status", corpus.dir, "--json", "--target", "1000")[1])
    total = sum(u["tokens"] + u["val_tokens"] for u in corpus.units.values())
    assert s["units"] == 4 and s["tokens"] == total and s["untested"] == 3 and s["progress"] == total / 1000
    prim = corpus.units["prim"]
    assert s["primitive_share"] == pytest.approx((prim["tokens"] + prim["val_tokens"]) / total)


def test_cli_init_creates_a_corpus_and_refuses_an_existing_one(tmp_path, capsys):
    f = write_unit(tmp_path, "u")
    rc, out, _ = main(capsys, "init", tmp_path / "c", f, "--vocab-size", "280")
    assert rc == 0 and "280 tokens" in out
    assert [e["event"] for e in C.Passport(tmp_path / "c" / "passport.jsonl").events()] == ["init"]
    rc, _, err = main(capsys, "init", tmp_path / "c", f)
    assert rc == 2 and "already exists" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c", "u.jsonl"]  # no temporary dirs left


def test_unit_added_event_keeps_the_whole_header(corpus):
    """add validates with the concepts dropped (they are most of a header at scale) and writes the
    event's header whole, read again from the unit's copy."""
    for u in ("prim", "a", "c"):
        header = json.loads((corpus.dir / "units" / f"{u}.jsonl").read_text().splitlines()[0])
        assert corpus.added[u]["header"] == header and header["concepts"] == [u]


def test_passport_chains_events_from_the_python_api(corpus, capsys):
    e = corpus.passport.append("model_trained", mode="pretrain", selection={"units": ["a"]}, tokens=123, checkpoint="ab")
    assert e["event"] == "model_trained" and corpus.passport.events("model_trained")[-1]["tokens"] == 123
    assert corpus.check() == 6 and main(capsys, "check", corpus.dir)[0] == 0
    with pytest.raises(CurriculumError, match="unknown passport event"):
        corpus.passport.append("trained_something")


def test_edited_middle_line_is_detected_with_its_line_number(corpus, capsys):
    path = corpus.dir / "passport.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    lines[2] = lines[2].replace('"tokens":', '"tokens":1')
    path.write_text("".join(lines))
    with pytest.raises(CurriculumError, match=r"passport.jsonl:3: line 3 was edited"):
        C.Corpus(corpus.dir).check()
    rc, _, err = main(capsys, "check", corpus.dir)
    assert rc == 2 and "passport.jsonl:3:" in err


def test_torn_last_line_is_detected_and_repaired(corpus, capsys):
    path = corpus.dir / "passport.jsonl"
    data = path.read_bytes()
    path.write_bytes(data[:-20])  # a crash mid-append
    rc, _, err = main(capsys, "check", corpus.dir)
    assert rc == 2 and "passport.jsonl:5: incomplete final line" in err
    with pytest.raises(CurriculumError, match="incomplete"):
        corpus.passport.append("adapter_trained", unit="a")
    rc, out, _ = main(capsys, "check", corpus.dir, "--repair")
    assert rc == 0 and "dropped an incomplete final passport line" in out
    assert path.read_bytes() == data[:data.rstrip(b"\n").rfind(b"\n") + 1]  # only the torn line went


def test_check_detects_a_changed_shard(corpus, capsys):
    shard = corpus.dir / "shards" / "b.train.bin"
    data = bytearray(shard.read_bytes())
    data[0] ^= 1
    shard.write_bytes(bytes(data))
    rc, _, err = main(capsys, "check", corpus.dir)
    assert rc == 2 and "b.train.bin: sha256 differs" in err


def test_killed_add_leaves_a_valid_corpus_and_rerun_completes(tmp_path):
    files = [write_unit(tmp_path, u, level=i, requires=[] if i == 0 else [f"u{i - 1}"]) for i, u in
             enumerate(["u0", "u1", "u2"])]
    C.init(tmp_path / "corpus", files, vocab_size=300)
    r = cli("add", tmp_path / "corpus", *files, env={"ACCRETE_TEST_CRASH_AFTER": "1"})
    assert r.returncode == -signal.SIGKILL
    c = C.Corpus(tmp_path / "corpus")
    assert list(c.units) == ["u0"] and c.check() == 2
    assert (c.dir / "shards" / "u1.train.bin").exists()  # a leftover, not a unit
    r = cli("add", tmp_path / "corpus", *files)
    assert r.returncode == 0 and "u0: already added" in r.stdout
    c = C.Corpus(tmp_path / "corpus")
    added = [e["unit"] for e in c.passport.events("unit_added")]
    assert added == ["u0", "u1", "u2"] and c.check() == 4
