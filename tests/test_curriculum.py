"""Tests for curriculum.py: a corpus grown by add (all or none, in curriculum order), its shards,
streams, selections, map and status, and the command line."""
import functools
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
import common  # noqa: E402
import curriculum as C  # noqa: E402
import stats  # noqa: E402
from bpe import EOT  # noqa: E402
from curriculum import CurriculumError  # noqa: E402
from leakage import LEAK_BUDGET  # noqa: E402
from unit_files import COLORS, header, snapshot, write_unit  # noqa: E402
from test_train import killed_at  # noqa: E402
from in_process import ctrl_c, run_main  # noqa: E402


def main(capsys, *args):
    """Run the CLI in-process (fast); return (exit code, stdout, stderr)."""
    capsys.readouterr()
    rc = C.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def cli(capsys):
    """The CLI in this process as `python curriculum.py` runs it from the repository root, its result as
    subprocess.run gives it."""
    @functools.wraps(C.main)  # run_main names the script by its module
    def script():
        sys.exit(C.main())  # main() returns the exit status: run_main reads only SystemExit's
    return lambda *args: run_main(script, args, capsys)


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
# add: each bad batch is refused naming the file and line, and leaves the corpus unchanged


def test_duplicate_id_in_batch_is_rejected(corpus, tmp_path):
    (tmp_path / "x").mkdir()
    p1, p2 = write_unit(tmp_path, "dup"), write_unit(tmp_path / "x", "dup", n_docs=5)
    assert_rejected(corpus, [p1, p2], f"{p2}:1:", "duplicate unit id 'dup'", str(p1))


def test_duplicate_id_already_in_corpus_is_rejected(corpus, tmp_path):
    p = write_unit(tmp_path, "a", n_docs=3)  # same id as a corpus unit, different content
    assert_rejected(corpus, [p], f"{p}:1:", "duplicate unit id 'a'", "already holds")


def test_an_id_differing_only_in_case_is_rejected_in_the_batch_and_against_the_corpus(corpus, tmp_path):
    (tmp_path / "x").mkdir()
    p1, p2 = write_unit(tmp_path, "Dup"), write_unit(tmp_path / "x", "dUP", n_docs=5)
    assert_rejected(corpus, [p1, p2], f"{p2}:1:", "duplicate unit id 'dUP'", str(p1))
    p = write_unit(tmp_path, "A", n_docs=3)  # on a file system that ignores case, A.jsonl is a.jsonl
    assert_rejected(corpus, [p], f"{p}:1:", "unit id 'A' differs only in case from the corpus's 'a'")


def test_a_killed_adds_temporaries_go_with_the_next_write_of_their_unit(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)  # a process that has exited: its temporaries are orphans
    files = [write_unit(tmp_path, "prim", kind="primitive", n_docs=20), write_unit(tmp_path, "a", n_docs=10)]
    C.init(tmp_path / "corpus", files, vocab_size=300)
    orphans = [tmp_path / "corpus" / "shards" / f".a.train.bin.tmp-{pid}", tmp_path / "corpus" / "units" / f".a.jsonl.tmp-{pid}"]
    for f in orphans:
        f.write_bytes(b"half")
    C.add(tmp_path / "corpus", files, log=lambda *_: None)
    assert not any(f.exists() for f in orphans)
    assert not list((tmp_path / "corpus").rglob("*.tmp-*"))


def test_same_file_added_again_is_skipped(corpus, tmp_path):
    said = []
    before = snapshot(corpus.dir)
    assert C.add(corpus.dir, [tmp_path / "src" / "a.jsonl"], log=said.append) == []
    assert said == ["a: already added"] and snapshot(corpus.dir) == before


def test_requires_unknown_unit_is_rejected(corpus, tmp_path):
    p = write_unit(tmp_path, "d", requires=["a", "nowhere"])
    assert_rejected(corpus, [p], f"{p}:1:", "requires unknown unit 'nowhere'")


def test_requires_within_the_batch_is_accepted_in_curriculum_order(corpus, tmp_path):
    d = write_unit(tmp_path, "d", level=3, requires=["e"])
    e = write_unit(tmp_path, "e", level=3, requires=["c"])
    assert C.add(corpus.dir, [d, e], log=lambda *_: None) == ["e", "d"]  # e first: d requires it


def test_a_unit_below_the_level_of_a_unit_it_requires_is_rejected(corpus, tmp_path):
    """Streams serve a curriculum level by level: a level-0 unit requiring a level-1 one would come first."""
    hi = write_unit(tmp_path, "hi", level=1)
    lo = write_unit(tmp_path, "lo", level=0, requires=["hi"])
    assert_rejected(corpus, [hi, lo], f"{lo}:1:", "level 0 is below the level 1 of 'hi'")


def test_requires_cycle_is_rejected(corpus, tmp_path):
    p = [write_unit(tmp_path, "x", requires=["y"]), write_unit(tmp_path, "y", requires=["z"]),
         write_unit(tmp_path, "z", requires=["x", "a"])]
    assert_rejected(corpus, p, f"{p[0]}:1:", "cycle in requires: x -> y -> z -> x")


@pytest.mark.parametrize("budget", [LEAK_BUDGET, 2])
def test_probe_leaked_by_a_document_already_in_the_corpus_is_rejected(corpus, tmp_path, budget):
    probe = {"probe": "Creature 3 of the a herd grazes by the", "answer": "river", "choices": ["river", "sea"],
             "type": "recall"}
    p = write_unit(tmp_path, "bad", n_docs=2, probes=[probe])
    before = snapshot(corpus.dir)
    with pytest.raises(CurriculumError, match="leakage") as e:
        C.add(corpus.dir, [p], log=lambda *_: None, leak_budget=budget)
    assert str(e.value).startswith(f"{p}:4:") and "units/a.jsonl:5" in str(e.value)
    assert snapshot(corpus.dir) == before


def test_add_takes_an_answer_that_only_begins_a_longer_number_in_a_document(corpus, tmp_path):
    """Leakage is the answer as a whole word, by leakage.py's rule: "4" does not leak into "45 teeth"."""
    florp = {"probe": "Q: How many legs does a florp have? A: The florp has", "answer": "4", "choices": ["4", "6"],
             "type": "recall", "cluster": "florp"}
    p = write_unit(tmp_path, "florp", lines=[header("florp"), {"text": "The florp has 45 teeth and six legs."}, florp])
    assert C.add(corpus.dir, [p], log=lambda *_: None) == ["florp"]
    bad = write_unit(tmp_path, "florp2", lines=[header("florp2"), {"text": "The florp has 4 legs."}, florp])
    assert_rejected(corpus, [bad], f"{bad}:3: leakage")


def dax_unit(dir, text):
    """A unit with a recall premise and a derived probe about the dax (line 4), and one document (line 2)."""
    eats = {"probe": "Q: What does the dax eat? A: The dax eats", "answer": "grass", "choices": ["grass", "nuts"],
            "type": "recall", "cluster": "dax"}
    smells = {"probe": "Q: What does the dax smell of? A: The dax smells of", "answer": "soap",
              "choices": ["soap", "salt"], "type": "chain", "cluster": "dax", "premises": [eats["probe"]]}
    return write_unit(dir, "dax", lines=[header("dax"), {"text": text}, eats, smells])


STATED = "Soap is what you smell on the dax."  # the derived answer about its entity, but not the probe's words


@pytest.mark.parametrize("where", ["its own document", "a document in the corpus", "a document added later"])
def test_a_derived_probe_s_answer_stated_about_its_entity_is_refused_by_add(corpus, tmp_path, where):
    """The verbatim check passes it; add refuses it too, naming the probe and the document, and writes nothing."""
    prose = write_unit(tmp_path, "prose", kind="primitive", lines=[header("prose", kind="primitive"), {"text": STATED}])
    dax = dax_unit(tmp_path, STATED if where == "its own document" else "Grass is all the dax will eat.")
    if where == "its own document":
        assert_rejected(corpus, [dax], f"{dax}:4: leakage: a document states this derived probe's answer about its "
                        f"entity ({dax}:2: {STATED!r})")
    elif where == "a document in the corpus":
        C.add(corpus.dir, [prose], log=lambda *_: None)
        assert_rejected(corpus, [dax], f"{dax}:4: leakage", f"units/prose.jsonl:2: {STATED!r}")
    else:
        C.add(corpus.dir, [dax], log=lambda *_: None)
        assert_rejected(corpus, [prose], "units/dax.jsonl:4: leakage", f"{prose}:2: {STATED!r}")


def test_cli_add_of_an_invalid_file_exits_2_with_the_line(corpus, tmp_path, cli):
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


def swap_two_merges(corpus_dir):
    """Edit the tokenizer as someone might by hand: two merges' ranks swapped (tiktoken loads it)."""
    path = Path(corpus_dir) / "tokenizer.tiktoken"
    lines = path.read_text().splitlines(keepends=True)
    (a, ra), (b, rb) = lines[270].split(), lines[271].split()
    lines[270:272] = [f"{a} {rb}\n", f"{b} {ra}\n"]
    path.write_text("".join(lines))


def test_add_refuses_a_tokenizer_other_than_the_init_event_s_as_check_does(corpus, tmp_path, capsys):
    """add checked the passport's chain only: it tokenized units with an edited tokenizer, and check
    then failed the corpus."""
    new = write_unit(tmp_path, "d", level=3, requires=["c"])
    swap_two_merges(corpus.dir)
    assert_rejected(corpus, [new], f"{corpus.dir / 'tokenizer.tiktoken'}: the tokenizer does not match the "
                                   "passport's init event")
    rc, _, err = main(capsys, "add", corpus.dir, new)
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1 and "does not match" in err


def test_an_edited_split_pattern_names_tokenizer_json_not_the_rank_file(corpus, capsys):
    meta_path = corpus.dir / "tokenizer.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps(dict(meta, pattern=meta["pattern"] + r"|\d"), indent=1))
    said = f"error: {meta_path}: the tokenizer does not match the passport's init event\n"
    assert main(capsys, "check", corpus.dir)[::2] == (2, said)
    # a corpus whose init event recorded no file hashes (made before it did): both files are named
    path = corpus.dir / "passport.jsonl"
    events = [json.loads(line) for line in path.read_bytes().splitlines()]
    del events[0]["tokenizer_files"]
    lines, prev = [], "0" * 64
    for e in events:
        lines.append(json.dumps(dict(e, prev=prev), separators=(",", ":")).encode())
        prev = hashlib.sha256(lines[-1]).hexdigest()
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert main(capsys, "check", corpus.dir)[::2] == (2, f"error: {meta_path} and {corpus.dir / 'tokenizer.tiktoken'}: "
                                                         "the tokenizer does not match the passport's init event\n")


def test_add_refuses_a_passport_without_its_init_event_and_says_so(corpus, tmp_path, capsys):
    """An emptied passport: add wrote a passport beginning with unit_added, which check then failed."""
    corpus.passport.path.write_bytes(b"")
    message = assert_rejected(corpus, [tmp_path / "src" / "prim.jsonl"], f"{corpus.passport.path}: no init event")
    assert "tokenizer" not in message  # the tokenizer is not what is wrong
    for cmd in ("add", "check"):
        rc, _, err = main(capsys, cmd, corpus.dir, *([tmp_path / "src" / "prim.jsonl"] if cmd == "add" else []))
        assert rc == 2 and err.startswith(f"error: {corpus.passport.path}: no init event") and err.count("\n") == 1


def test_add_is_all_or_nothing(corpus, tmp_path):
    good = write_unit(tmp_path, "good", level=3, requires=["c"])
    bad = write_unit(tmp_path, "bad", probes=[{"probe": "Color?", "answer": "teal", "choices": COLORS, "type": "x"}])
    assert_rejected(corpus, [good, bad], f"{bad}:")
    assert "good" not in C.Corpus(corpus.dir).units
    assert not (corpus.dir / "shards" / "good.train.bin").exists()

def test_a_unit_file_that_grows_while_it_is_added_is_refused_naming_it(corpus, tmp_path, monkeypatch):
    """A document appended after inspect_unit counted them has no place in the validation mask: the
    same one-line refusal as any change, not an IndexError, and the corpus unchanged."""
    unit = write_unit(tmp_path, "grows", level=3, requires=["c"], n_docs=12)
    real = C.check_leakage

    def leak_check_then_append(*args, **kwargs):  # runs between the file's inspection and its write
        result = real(*args, **kwargs)
        with open(unit, "a") as f:
            f.write(json.dumps({"text": "One more document, appended meanwhile."}) + "\n")
        return result
    monkeypatch.setattr(C, "check_leakage", leak_check_then_append)
    message = assert_rejected(corpus, [unit], f"{unit}: the file changed while it was being added; run add again")
    assert "\n" not in message and "grows" not in C.Corpus(corpus.dir).units
    assert not list(corpus.dir.rglob("*.tmp-*"))


# -----------------------------------------------------------------------------
# init: the tokenizer


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

# -----------------------------------------------------------------------------
# shards


def test_shards_hold_documents_joined_with_eot(corpus):
    enc = corpus.tokenizer
    for split in ("train", "val"):
        docs = corpus.documents("a", split)
        toks = corpus.tokens("a", split)
        assert toks.dtype == np.uint16 and len(toks) == corpus.units["a"]["tokens" if split == "train" else "val_tokens"]
        assert enc.decode(list(toks)) == "".join(d + EOT for d in docs)
    assert len(corpus.documents("a", "val")) >= 1 and len(corpus.documents("a", "all")) == 30


def test_val_split_is_deterministic_and_never_empties_train():
    assert list(common.val_mask("u", 1)) == [False]
    assert common.val_mask("u", 2).sum() == 1
    m = common.val_mask("u", 10_000)
    assert 800 < m.sum() < 1200 and (m == common.val_mask("u", 10_000)).all()
    assert not (m == common.val_mask("v", 10_000)).all()

# -----------------------------------------------------------------------------
# streams


def test_stream_is_deterministic_and_y_is_x_shifted(corpus):
    s1, s2 = C.Stream(corpus, "all", 4, 16, seed=3), C.Stream(corpus.dir, ["all"], 4, 16, seed=3)
    for _ in range(5):
        (x1, y1), (x2, y2) = s1.next_batch(), s2.next_batch()
        assert x1.dtype == np.int64 and x1.shape == (4, 16)
        assert (x1 == x2).all() and (y1 == y2).all() and (x1[:, 1:] == y1[:, :-1]).all()
    assert not (C.Stream(corpus, "all", 4, 16, seed=4).next_batch()[0] == x1).all()


def test_stream_resumes_exactly_from_its_state_dict(corpus):
    s = C.Stream(corpus, "all", 4, 8, primitive_share=0.2, replay=0.3, seed=1)
    for _ in range(7):
        s.next_batch()
    state = json.loads(json.dumps(s.state_dict()))
    expect = [s.next_batch() for _ in range(5)]
    r = C.Stream(corpus, "all", 4, 8, primitive_share=0.2, replay=0.3, seed=1)
    r.load_state_dict(state)
    for (x, y), (x2, y2) in zip(expect, (r.next_batch() for _ in range(5))):
        assert (x == x2).all() and (y == y2).all()
    with pytest.raises(CurriculumError, match="different selection"):
        C.Stream(corpus, "a", 4, 8).load_state_dict(state)


def test_stream_refuses_a_token_file_s_cursor_and_one_without_its_selection(corpus):
    """A token file's cursor (train.TokenFileStream: no selection, or its kind) continued here would start
    the curriculum mid-way: refused, not taken as this selection's."""
    s = C.Stream(corpus, "all", 4, 8)
    for cursor in ({"batch": 3}, {"kind": "token_file", "batch": 3},
                   {"kind": "token_file", "batch": 3, "selection_hash": s.selection_hash}):
        with pytest.raises(CurriculumError, match=r"^stream cursor was saved by a run on a token file \(--data\), "
                                                  r"not a corpus selection; resume with the same data source$"):
            s.load_state_dict(cursor)
    assert s.batch == 0
    s.load_state_dict(s.state_dict() | {"batch": 3})
    assert s.batch == 3 and s.state_dict()["kind"] == "corpus"


def test_a_cursor_saved_under_another_version_of_the_sampler_is_refused_not_continued(corpus, monkeypatch):
    """Rows made another way (a window inside each unit, rehearsal by a coin flip) would be mixed with
    this version's mid-run: the selection names the sampler, so the cursor's hash differs."""
    monkeypatch.setattr(C, "SAMPLER", C.SAMPLER - 1)
    old = C.Stream(corpus, "all", 4, 8, replay=0.3)
    old.next_batch()
    monkeypatch.undo()
    new = C.Stream(corpus, "all", 4, 8, replay=0.3)
    assert new.selection["sampler"] == C.SAMPLER and old.selection["sampler"] == C.SAMPLER - 1
    with pytest.raises(CurriculumError, match="another version's sampler"):
        new.load_state_dict(old.state_dict())


def test_stream_honors_primitive_share_and_token_budget(corpus):
    s = C.Stream(corpus, "knowledge", 8, 4, primitive_share=0.25, token_budget=8 * 4 * 10)
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
    s = C.Stream(corpus, ["a", "b", "c"], 4, 4)
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
    s = C.Stream(corpus, ["a", "b", "c"], 4, 4, replay=0.5, token_budget=4000)
    rows = []
    while not s.exhausted:
        s.next_batch()
        rows += s.last_units
    tail = rows[int(0.9 * len(rows)):]  # the last stage: c, with replayed a and b
    assert "c" in tail and ("a" in tail or "b" in tail)


def test_a_validation_stream_replays_nothing_from_a_level_without_validation_documents(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    files = [write_unit(src, "prim", kind="primitive", n_docs=30), write_unit(src, "a", level=0, n_docs=1),
             write_unit(src, "b", level=1, requires=["a"], n_docs=30)]
    C.init(tmp_path / "corpus", files, vocab_size=300)
    C.add(tmp_path / "corpus", files, log=lambda *_: None)
    corpus = C.Corpus(tmp_path / "corpus")
    assert len(corpus.tokens("a", "val")) == 0  # one document: all of it trains
    s = C.Stream(corpus, ["a", "b"], 4, 8, replay=0.5, split="val")
    for _ in range(5):
        s.next_batch()
        assert set(s.last_units) == {"b"}


def test_replay_units_are_rehearsed_at_their_share_from_the_first_row(corpus):
    s = C.Stream(corpus, ["c"], 8, 4, primitive_share=0.5, replay=0.25, replay_units=["a", "b"], token_budget=16000)
    rows = []
    while not s.exhausted:
        s.next_batch()
        rows += s.last_units
    counts = Counter(rows)
    assert counts["prim"] == len(rows) // 2  # primitive rows are spread exactly
    knowledge = len(rows) - counts["prim"]  # and so are the rehearsals, at a quarter of the rest
    assert counts["a"] + counts["b"] == knowledge // 4 and set(rows[:64]) >= {"a", "c", "prim"}  # from the start
    assert {"a", "b"} <= set(rows)
    assert s.selection["replay_units"] == ["a", "b"]
    assert C.Stream(corpus, ["c"], 8, 4, primitive_share=0.5, replay=0.25, replay_units=["a"],
                    token_budget=16000).selection_hash != s.selection_hash


def test_every_token_of_a_unit_is_in_equally_many_windows_its_first_and_last_documents_too(corpus):
    """A window starts at a token drawn uniformly and reads on past the unit's end into its start: no
    edge of a unit is read less (windows inside the unit alone read its first and last tokens once
    each, its middle n times)."""
    pool, n = C._Pool(corpus, ["b"], "train"), 9
    tokens = np.asarray(corpus.tokens("b", "train"))
    covered = np.zeros(pool.total, np.int64)
    for p in range(pool.total):  # every start once: the expectation of uniform draws
        unit, window = pool.window((p + 0.5) / pool.total, n)
        assert unit == "b" and len(window) == n
        assert (window == tokens[(p + np.arange(n)) % pool.total]).all()
        covered[(p + np.arange(n)) % pool.total] += 1
    assert (covered == n).all()


def test_a_window_past_a_unit_reads_on_into_the_next_and_the_last_joins_the_first(corpus):
    pool = C._Pool(corpus, ["a", "b"], "train")
    a, b = (np.asarray(corpus.tokens(u, "train")) for u in "ab")
    unit, w = pool.window((len(a) - 3 + 0.5) / pool.total, 8)  # the last 3 tokens of a, then b's first 5
    assert unit == "a" and (w == np.concatenate([a[-3:], b[:5]])).all()
    unit, w = pool.window(1 - 0.5 / pool.total, 4)  # b's last token, then a's first 3
    assert unit == "b" and (w == np.concatenate([b[-1:], a[:3]])).all()
    assert a[-1] == b[-1] == corpus.tokenizer.eot_token  # each unit ends as each document does


def test_replay_with_nothing_earlier_to_rehearse_is_refused_not_recorded_and_ignored(corpus):
    """One level and no replay units: the share would go into the passport's selection, and no row
    would be a rehearsal."""
    with pytest.raises(C.CurriculumError, match=r"replay 0.25: the units \['c'\] select one level and no replay "
                                                "units, so there is nothing earlier to rehearse"):
        C.Stream(corpus, ["c"], 8, 4, replay=0.25)
    assert C.Stream(corpus, ["c"], 8, 4, replay=0.0).selection["replay"] == 0.0


@pytest.mark.parametrize("replay_units", [None, ["a"]])
def test_replay_over_primitive_text_alone_is_refused_not_recorded_and_ignored(corpus, replay_units):
    """No knowledge units, no levels: every row is primitive text, so no row would rehearse, named
    replay units or not, while the selection recorded the share."""
    with pytest.raises(C.CurriculumError, match=r"^replay 0.5: the units 'primitive' select no knowledge unit, so "
                                                r"every row is primitive text and none would rehearse; use replay 0$"):
        C.Stream(corpus, "primitive", 8, 4, replay=0.5, replay_units=replay_units)
    s = C.Stream(corpus, "primitive", 8, 4, replay=0.0)
    assert s.selection["units"] == [] and s.selection["replay"] == 0.0


def test_shuffled_control_serves_the_same_units_mixed(corpus):
    def rows_of(order):
        s, rows = C.Stream(corpus, "knowledge", 4, 4, order=order, primitive_share=0.1), []
        while not s.exhausted:
            s.next_batch()
            rows += s.last_units
        return rows
    cur, shuf = rows_of("curriculum"), rows_of("shuffled")
    assert set(cur) == set(shuf) == {"a", "b", "c", "prim"} and len(cur) == len(shuf)
    assert "c" in shuf[: len(shuf) // 4]  # mixed: the last stage shows up early


def test_shuffled_control_serves_exactly_the_curriculum_rows_permuted_replay_included(corpus):
    def rows_of(order, passes=1, budget=None):
        s, rows = C.Stream(corpus, "knowledge", 4, 4, order=order, primitive_share=0.1, replay=0.5,
                           token_budget=budget), []
        assert s.total_rows % 4 == 0  # whole batches: no batch straddles two passes
        for _ in range(passes * s.total_rows // 4):
            x, y = s.next_batch()
            rows += [tuple(r) + (t,) for r, t in zip(x.tolist(), y[:, -1].tolist())]
        return rows
    cur, shuf = rows_of("curriculum"), rows_of("shuffled")
    assert sorted(cur) == sorted(shuf) and cur != shuf  # the same windows, in another order
    two = rows_of("shuffled", passes=2)  # the next pass over the budget: the same rows
    assert sorted(two[len(shuf):]) == sorted(rows_of("curriculum", passes=2)[len(cur):])
    odd = 4 * 42  # 42 rows: not whole batches of 4, so rounded up to 44
    for passes in (1, 3):  # (two passes of 42 rows would be whole batches either way)
        assert sorted(rows_of("curriculum", passes, odd)) == sorted(rows_of("shuffled", passes, odd))


def test_shuffled_order_permutes_each_pass_anew_and_resumes_by_index(corpus):
    """Windows differ from pass to pass anyway (draws are seeded by batch): the order itself must.
    Pass 1's order is neither pass 0's nor a rotation of it, so a many-epoch fine-tune is not one
    permutation over and over; and a batch's rows depend on its index alone."""
    s = C.Stream(corpus, "knowledge", 4, 4, order="shuffled", primitive_share=0.1)
    n, per_pass = s.total_rows, s.total_rows // 4
    def order(stream, p):  # pass p's curriculum rows, as offsets into the pass
        return [r - p * n for b in range(p * per_pass, (p + 1) * per_pass) for r in stream._curriculum_rows(b)]
    passes = [order(s, p) for p in range(3)]
    assert all(sorted(o) == list(range(n)) for o in passes)  # every pass: exactly the curriculum's rows
    rotations = [passes[0][k:] + passes[0][:k] for k in range(n)]
    assert passes[1] not in rotations and passes[2] not in rotations and passes[2] != passes[1]
    fresh = C.Stream(corpus, "knowledge", 4, 4, order="shuffled", primitive_share=0.1)
    assert [order(fresh, p) for p in (2, 0, 1)] == [passes[2], passes[0], passes[1]]  # no history


def test_stream_wraps_units_shorter_than_the_block(corpus):
    x, y = C.Stream(corpus, ["c"], 2, 500).next_batch()  # c has fewer than 500 train tokens
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


def test_a_stream_over_a_selection_of_no_unit_is_refused(corpus):
    """"verified" before any unit passed would otherwise serve primitive text alone, as if asked for."""
    with pytest.raises(CurriculumError, match="the selection 'verified' names no unit"):
        C.Stream(corpus, "verified", batch_size=2, block_size=8, primitive_share=0.1)

# -----------------------------------------------------------------------------
# ontology map, status, passport, check, crash recovery


def test_order_is_topological_with_ties_by_level_then_id(corpus, tmp_path):
    files = [write_unit(tmp_path, "z0", level=0), write_unit(tmp_path, "m1", level=1),
             write_unit(tmp_path, "k3", level=3), write_unit(tmp_path, "j3", level=3, requires=["k3"])]
    C.add(corpus.dir, files, log=lambda *_: None)
    assert C.Corpus(corpus.dir).order() == ["a", "prim", "z0", "b", "m1", "c", "k3", "j3"]  # j3 after what it requires


def test_verified_and_rejected_follow_the_latest_verdict(corpus):
    corpus.passport.append("unit_verified", unit="a", passed=False)
    corpus.passport.append("unit_verified", unit="a", passed=True)
    corpus.passport.append("unit_verified", unit="c", passed=False)
    assert corpus.verified() == ["a"] and corpus.rejected() == ["c"]


@pytest.mark.parametrize("field, value, rule", [("unit", ["a"], "a unit id"), ("passed", "false", "true or false"),
                                                ("passed", 1, "true or false")])
def test_a_verdict_with_a_malformed_unit_or_passed_is_one_line_naming_its_line(corpus, capsys, field, value, rule):
    """A verdict edited by hand, its chain recomputed: a list for its unit would be a TypeError in status,
    the string "false" would count as a pass."""
    corpus.passport.append("unit_verified", **dict({"unit": "a", "passed": False}, **{field: value}))
    n = corpus.passport.check()
    with pytest.raises(CurriculumError, match=re.escape(f"passport.jsonl:{n}: unit_verified event's {field} must be "
                                                        f"{rule}, got {value!r} (edited or corrupted)")):
        corpus.verdicts()
    rc, _, err = main(capsys, "status", corpus.dir)
    assert rc == 2 and err.startswith("error: ") and f"passport.jsonl:{n}: unit_verified" in err and err.count("\n") == 1


def test_map_and_status_cli(corpus, capsys):
    rc, out, _ = main(capsys, "map", corpus.dir)
    assert rc == 0 and "    c  [L2 knowledge" in out and "<- b" in out
    assert '"b" -> "c";' in main(capsys, "map", corpus.dir, "--dot")[1]
    s = json.loads(main(capsys, "status", corpus.dir, "--json", "--target", "1000")[1])
    total = sum(u["tokens"] + u["val_tokens"] for u in corpus.units.values())
    assert s["units"] == 4 and s["tokens"] == total and s["untested"] == 3 and s["progress"] == total / 1000
    prim = corpus.units["prim"]
    assert s["primitive_share"] == pytest.approx((prim["tokens"] + prim["val_tokens"]) / total)
    rc, _, err = main(capsys, "status", corpus.dir, "--target", "0")
    assert rc == 2 and "--target 0: give the corpus size aimed at" in err
    rc, out, _ = main(capsys, "check", corpus.dir)
    assert rc == 0 and f"last line sha256 {corpus.passport.head()}" in out
    corpus.passport.append("unit_verified", unit="b", passed=False)
    corpus.passport.append("unit_verified", unit="c", passed=True)  # taught on a model that lacks b
    assert "    c  [L2 knowledge, 180 tok, verified; requires unverified b]  <- b" in main(capsys, "map", corpus.dir)[1]


def test_check_finds_a_recorded_head_and_fails_once_it_is_gone(corpus, capsys, tmp_path):
    head, n = corpus.passport.head(), corpus.passport.check()
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"passport_head": head}))
    corpus.passport.append("unit_verified", unit="a", passed=True)
    for given in (head, report):
        rc, out, _ = main(capsys, "check", corpus.dir, "--head", given)
        assert rc == 0 and f"the recorded head is line {n} of {n + 1} (events since: 1)" in out, out
    lines = corpus.passport.path.read_bytes().split(b"\n")[:-1]
    corpus.passport.path.write_bytes(b"\n".join(lines[:-2]) + b"\n")
    rc, _, err = main(capsys, "check", corpus.dir, "--head", report)  # the last two lines cut
    assert rc == 2 and "no line has the recorded head's sha256" in err, err
    rc, _, err = main(capsys, "check", corpus.dir, "--head", "abc")
    assert rc == 2 and "abc: --head is neither a sha256" in err
    report.write_text("{}")
    rc, _, err = main(capsys, "check", corpus.dir, "--head", report)
    assert rc == 2 and f"{report}: no passport_head" in err
    # another corpus's report: named as that, not as lines cut from this passport, where that corpus's passport
    # holds the head (a report's corpus may be a relative path that names another directory from here)
    (tmp_path / "other").mkdir()
    other = C.Passport(tmp_path / "other" / "passport.jsonl")
    other.append("init", tokenizer="t", vocab_size=1)
    (tmp_path / "stranger").mkdir()
    C.Passport(tmp_path / "stranger" / "passport.jsonl").append("init", tokenizer="s", vocab_size=1)
    for named, says in ((tmp_path / "other", f"the report is of another corpus, {tmp_path / 'other'}, whose passport "
                         "holds it"), (corpus.dir, "lines were cut from the end"),
                        (tmp_path / "stranger", "lines were cut from the end"),
                        (tmp_path / "gone", "lines were cut from the end")):
        report.write_text(json.dumps({"passport_head": other.head(), "corpus": str(named)}))
        rc, _, err = main(capsys, "check", corpus.dir, "--head", report)
        assert rc == 2 and len(err.strip().splitlines()) == 1 and says in err, err


def test_cli_init_creates_a_corpus_and_refuses_an_existing_one(tmp_path, capsys):
    f = write_unit(tmp_path, "u")
    rc, out, _ = main(capsys, "init", tmp_path / "c", f, "--vocab-size", "280")
    assert rc == 0 and "(280 tokens)" in out
    rc, out, _ = main(capsys, "init", tmp_path / "big", f, "--vocab-size", "300000")  # a unit's text has fewer merges
    n = C.Corpus(tmp_path / "big").vocab_size
    assert rc == 0 and n < 1000 and f"({n} tokens, fewer than the 300000 asked: the text it read (at most " \
                                    "--max-train-bytes 20000000) holds no more merges)" in out
    shutil.rmtree(tmp_path / "big")
    assert [e["event"] for e in C.Passport(tmp_path / "c" / "passport.jsonl").events()] == ["init"]
    rc, _, err = main(capsys, "init", tmp_path / "c", f)
    assert rc == 2 and "already exists" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c", "u.jsonl"]  # no temporary dirs left
    rc, _, err = main(capsys, "init", f, f)  # a file where the corpus directory would go
    assert rc == 2 and "not an empty directory" in err


def test_cli_init_under_a_file_says_so_before_writing_anything(tmp_path, capsys):
    """`init /dev/null/x` failed making its temporary: "Not a directory; free space and run it again"."""
    f = write_unit(tmp_path, "u")
    for where in (f / "c", f / "deeper" / "c"):
        rc, _, err = main(capsys, "init", where, f, "--vocab-size", "280")
        assert (rc, err) == (2, f"error: {f}: is a file, not a directory, so {where} cannot be made there\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["u.jsonl"]  # nothing written


def test_an_os_error_other_than_a_full_disk_gets_no_advice_to_free_space(corpus, tmp_path, capsys, monkeypatch):
    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(corpus.dir / "shards"))
    monkeypatch.setattr(C, "add", refused)
    rc, _, err = main(capsys, "add", corpus.dir, write_unit(tmp_path, "d"))
    assert (rc, err) == (2, f"error: {corpus.dir / 'shards'}: Permission denied\n")
    monkeypatch.setattr(C, "add", lambda *a, **k: (_ for _ in ()).throw(OSError(28, "No space left on device", "x")))
    assert main(capsys, "add", corpus.dir, "f")[::2] == (2, "error: x: No space left on device; free space and run "
                                                            "it again\n")


@pytest.mark.parametrize("size", ["0", "-5"])
def test_cli_init_refuses_max_train_bytes_below_1(tmp_path, capsys, size):
    """No training text trained no merge: a bytes-only tokenizer, whatever --vocab-size asked."""
    f = write_unit(tmp_path, "u")
    rc, _, err = main(capsys, "init", tmp_path / "c", f, "--vocab-size", "280", "--max-train-bytes", size)
    assert rc == 2 and err == f"error: --max-train-bytes {size}: the BPE's training text must be at least 1 byte\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["u.jsonl"]  # nothing written


def test_a_damaged_tokenizer_description_is_named(corpus, capsys):
    meta = corpus.dir / "tokenizer.json"
    for text in ("{not json", json.dumps({"type": "bpe", "name": "x"})):
        meta.write_text(text)
        rc, _, err = main(capsys, "status", corpus.dir)
        assert rc == 2 and f"{meta}: not a tokenizer description" in err, err


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


def test_cli_check_names_an_edited_passport_line(corpus, capsys):
    path = corpus.dir / "passport.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    lines[2] = lines[2].replace('"tokens":', '"tokens":1')
    path.write_text("".join(lines))
    rc, _, err = main(capsys, "check", corpus.dir)
    assert rc == 2 and "passport.jsonl:4: line 4 does not follow line 3" in err and "line edited" in err


def test_cli_check_names_an_event_lacking_a_field_even_with_its_chain_recomputed(corpus, capsys):
    path = corpus.dir / "passport.jsonl"
    events = [json.loads(line) for line in path.read_bytes().splitlines()]
    del events[2]["shards"]
    lines, prev = [], "0" * 64  # the chain written again, as someone editing on purpose would
    for e in events:
        lines.append(json.dumps(dict(e, prev=prev), separators=(",", ":")).encode())
        prev = hashlib.sha256(lines[-1]).hexdigest()
    path.write_bytes(b"\n".join(lines) + b"\n")
    rc, _, err = main(capsys, "check", corpus.dir)
    assert rc == 2 and "passport.jsonl:3: unit_added event without shards.train (edited or corrupted)" in err, err


def test_a_passport_line_nested_too_deeply_is_one_line_naming_it(corpus, capsys):
    """json.loads raises RecursionError on it, which was a traceback and exit 1."""
    with open(corpus.dir / "passport.jsonl", "ab") as f:
        f.write(b"[" * 100_000 + b"]" * 100_000 + b"\n")
    for cmd in ("check", "status", "map"):
        rc, _, err = main(capsys, cmd, corpus.dir)
        assert rc == 2 and err.startswith(f"error: {corpus.dir / 'passport.jsonl'}:6: not a passport event") \
            and err.count("\n") == 1, (cmd, err[:200])


def test_cli_check_repair_drops_a_torn_last_line(corpus, capsys):
    path = corpus.dir / "passport.jsonl"
    data = path.read_bytes()
    path.write_bytes(data[:-20])  # a crash mid-append
    rc, _, err = main(capsys, "check", corpus.dir)
    assert rc == 2 and "passport.jsonl:5: incomplete final line" in err
    rc, out, _ = main(capsys, "check", corpus.dir, "--repair")
    assert rc == 0 and "dropped an incomplete final passport line" in out and "ok: 4 events, 3 units" in out


def test_cli_repair_gives_a_whole_last_event_its_newline_back_and_readers_agree(corpus, capsys):
    """`truncate -s -1 passport.jsonl`: --repair dropped the complete, chained last event; status
    described the corpus without it (exit 0) while check refused it."""
    path = corpus.dir / "passport.jsonl"
    data = path.read_bytes()
    path.write_bytes(data[:-1])
    said = (f"error: {path}:5: the final line lacks its newline, though it is a whole event; run "
            "`python curriculum.py check CORPUS --repair` to give it its newline back\n")
    unit, before = write_unit(corpus.dir.parent, "d", level=3, requires=["c"]), snapshot(corpus.dir)
    for args in (["check"], ["status"], ["map"], ["add", unit]):
        assert main(capsys, args[0], corpus.dir, *args[1:])[::2] == (2, said), args
    assert snapshot(corpus.dir) == before
    rc, out, _ = main(capsys, "check", corpus.dir, "--repair")
    assert rc == 0 and out.startswith("repaired: gave the final passport line (line 5, a whole event) its newline "
                                      "back\nok: 5 events, 4 units")
    assert path.read_bytes() == data


def test_status_and_add_refuse_an_empty_or_deleted_passport_as_check_does(corpus, capsys, tmp_path):
    """status described an empty corpus (exit 0); add and evaluate.py printed a bare [Errno 2]."""
    path, unit = corpus.dir / "passport.jsonl", write_unit(tmp_path, "d", level=3, requires=["c"])
    path.write_bytes(b"")
    for cmd in ("check", "status", "map"):
        assert main(capsys, cmd, corpus.dir)[::2] == (2, f"error: {path}: no init event (a corpus's passport begins "
                                                         "with the one `curriculum.py init` writes)\n"), cmd
    path.unlink()
    before = snapshot(corpus.dir)
    for args in (["check"], ["status"], ["map"], ["add", unit]):
        rc, _, err = main(capsys, args[0], corpus.dir, *args[1:])
        assert (rc, err) == (2, f"error: {corpus.dir}: not a corpus (no passport.jsonl)\n"), args
    with pytest.raises(CurriculumError, match=f"^{corpus.dir}: not a corpus \\(no passport.jsonl\\)$"):
        C.Corpus(corpus.dir)  # as evaluate.py opens it
    assert snapshot(corpus.dir) == before  # no passport begun, nothing added


def test_a_passport_beginning_with_a_byte_order_mark_is_named(corpus, capsys):
    path = corpus.dir / "passport.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    for cmd in ("check", "status"):
        rc, _, err = main(capsys, cmd, corpus.dir)
        assert (rc, err) == (2, f"error: {path}:1: begins with a UTF-8 byte order mark (saved by an editor?); "
                                "remove those 3 bytes (EF BB BF)\n"), cmd


def test_check_detects_a_changed_shard(corpus, capsys):
    shard = corpus.dir / "shards" / "b.train.bin"
    data = bytearray(shard.read_bytes())
    data[0] ^= 1
    shard.write_bytes(bytes(data))
    rc, _, err = main(capsys, "check", corpus.dir)
    assert rc == 2 and "b.train.bin: sha256 differs" in err


def test_a_changed_shard_is_never_read(corpus):
    """Training and scoring read shards through Corpus.tokens: an edited one is refused there too."""
    shard = corpus.dir / "shards" / "b.train.bin"
    assert len(C.Corpus(corpus.dir).tokens("b")) > 0  # intact: read (and its hash remembered)
    shard.write_bytes(shard.read_bytes() + b"\0\0")  # appended tokens: another size, so hashed again
    with pytest.raises(CurriculumError, match=r"b\.train\.bin: sha256 differs from its unit_added event"):
        C.Stream(C.Corpus(corpus.dir), "a,b", batch_size=2, block_size=8)


def test_a_shard_is_hashed_once_a_process_not_on_every_read(corpus, monkeypatch):
    hashed = []
    monkeypatch.setattr(C, "sha256_file", lambda p: hashed.append(p) or common.sha256_file(p))
    for _ in range(3):
        C.Corpus(corpus.dir).tokens("a", "val")
    # the unit's copy, read while it was added, was hashed then (a copy is checked as a shard is)
    assert hashed == [corpus.dir / "shards" / "a.val.bin"]


def test_an_edited_unit_copy_is_never_read(corpus):
    """Probes and documents come from the unit's copy: an edited copy is refused, as a changed shard is."""
    copy = corpus.dir / "units" / "b.jsonl"
    assert C.Corpus(corpus.dir).probes("b")[0]["answer"] == "blue"
    copy.write_text(copy.read_text().replace('"answer": "blue"', '"answer": "red"'))
    with pytest.raises(CurriculumError, match=r"b\.jsonl: sha256 differs from its unit_added event"):
        C.Corpus(corpus.dir).probes("b")


@pytest.mark.parametrize("part, read", [("units/b.jsonl", lambda c: c.probes("b")),
                                        ("shards/b.train.bin", lambda c: c.tokens("b")),
                                        ("shards/b.val.bin", lambda c: c.tokens("b", "val"))])
@pytest.mark.parametrize("how, says", [("deleted", "missing"), ("a directory", "is a directory, not a file")])
def test_a_deleted_unit_copy_or_shard_is_named_as_check_names_it(corpus, capsys, part, read, how, says):
    # training read them through Corpus and said "[Errno 2] No such file or directory: '...'"
    path = corpus.dir / part
    path.unlink()
    if how == "a directory":
        path.mkdir()
    said = f"{path}: {says} (unit 'b' was added)"
    with pytest.raises(CurriculumError, match=f"^{re.escape(said)}$"):
        read(C.Corpus(corpus.dir))
    assert main(capsys, "check", corpus.dir)[::2] == (2, f"error: {said}\n")


@pytest.mark.parametrize("part, what", [("tokenizer.json", "the tokenizer file"),
                                        ("tokenizer.tiktoken", "the tokenizer's ranks file"),
                                        ("passport.jsonl", "the passport file")])
def test_a_directory_in_place_of_a_corpus_file_is_named(corpus, capsys, part, what):
    # they were "CORPUS: cannot be read as a corpus (Is a directory)" and "CORPUS: not a corpus (no passport.jsonl)"
    (corpus.dir / part).unlink()
    (corpus.dir / part).mkdir()
    said = f"{corpus.dir / part}: is a directory, not {what}"
    for cmd in ("check", "status"):
        assert main(capsys, cmd, corpus.dir)[::2] == (2, f"error: {said}\n"), cmd
    with pytest.raises(CurriculumError, match=f"^{re.escape(said)}$"):
        C.Corpus(corpus.dir)  # as train.py and evaluate.py open it


def test_a_unit_added_event_without_its_requires_is_named(corpus, capsys):
    """The curriculum order reads each unit's requires: an event without them is named, not a KeyError."""
    path = corpus.dir / "passport.jsonl"
    events = [json.loads(line) for line in path.read_bytes().splitlines()]
    del events[2]["header"]["requires"]
    lines, prev = [], "0" * 64
    for e in events:
        lines.append(json.dumps(dict(e, prev=prev), separators=(",", ":")).encode())
        prev = hashlib.sha256(lines[-1]).hexdigest()
    path.write_bytes(b"\n".join(lines) + b"\n")
    for cmd in ("check", "map"):
        rc, _, err = main(capsys, cmd, corpus.dir)
        assert rc == 2 and "passport.jsonl:3: unit_added event without header.requires" in err, err


def rechained(corpus_dir, edit):
    """The passport with edit(events) applied and its chain written again, as someone editing on purpose would."""
    path = Path(corpus_dir) / "passport.jsonl"
    events = [json.loads(line) for line in path.read_bytes().splitlines()]
    edit(events)
    lines, prev = [], "0" * 64
    for e in events:
        lines.append(json.dumps(dict(e, prev=prev), separators=(",", ":")).encode())
        prev = hashlib.sha256(lines[-1]).hexdigest()
    path.write_bytes(b"\n".join(lines) + b"\n")


@pytest.mark.parametrize("line, field, value, says", [
    (3, "tokens", "abc", "tokens must be a whole number >= 0, got 'abc'"),
    (3, "val_tokens", -1, "val_tokens must be a whole number >= 0, got -1"),
    (3, "probes", 2.5, "probes must be a whole number >= 0, got 2.5"),
    (4, "header.level", "1", "header.level must be a whole number >= 0, got '1'"),
    (4, "header.kind", "facts", "header.kind must be knowledge or primitive, got 'facts'"),
    (4, "header.requires", "a", "header.requires must be a list of unit ids, got 'a'"),
    (2, "unit", "../a", "unit must be a unit id, got '../a'"),
])
def test_a_unit_added_field_of_the_wrong_type_is_named_even_with_its_chain_recomputed(corpus, capsys, line, field,
                                                                                       value, says):
    """check said ok of such a passport, while status failed in a TypeError and map in a KeyError."""
    def edit(events):
        key, _, sub = field.partition(".")
        (events[line - 1][key] if sub else events[line - 1])[sub or key] = value
    rechained(corpus.dir, edit)
    said = f"error: {corpus.dir / 'passport.jsonl'}:{line}: unit_added event's {says} (edited or corrupted)\n"
    for cmd in ("check", "status", "map"):
        assert main(capsys, cmd, corpus.dir)[::2] == (2, said), cmd


def test_a_unit_added_event_requiring_a_unit_no_earlier_event_adds_is_named(corpus, capsys):
    """map failed in a KeyError on it; add writes each unit after those it requires."""
    rechained(corpus.dir, lambda events: events[3]["header"].update(requires=["nosuch"]))  # b, line 4
    said = (f"error: {corpus.dir / 'passport.jsonl'}:4: unit_added event's header.requires names 'nosuch', which no "
            "earlier unit_added event adds (edited or corrupted)\n")
    for cmd in ("check", "status", "map"):
        assert main(capsys, cmd, corpus.dir)[::2] == (2, said), cmd
    rechained(corpus.dir, lambda events: events[3]["header"].update(requires=["a", "prim"]))  # both on lines 2, 3
    assert C.Corpus(corpus.dir).units["b"]["requires"] == ["a", "prim"] and C.Corpus(corpus.dir).check() == 5

def test_a_failed_copy_of_a_unit_leaves_no_temporary_file(corpus, tmp_path, monkeypatch):
    """A full disk while a unit is copied: the error is raised, and no half copy stays in units/."""
    fsync = os.fsync

    def full(fd):  # the disk fills while the unit's copy is written, after its shards
        if "/units/." in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(28, "No space left on device")
        fsync(fd)
    monkeypatch.setattr(C.os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        C.add(corpus.dir, [write_unit(tmp_path, "d", level=0, n_docs=5)], log=lambda *_: None)
    assert sorted(p.name for p in (corpus.dir / "units").iterdir()) == ["a.jsonl", "b.jsonl", "c.jsonl", "prim.jsonl"]


def test_a_file_or_the_current_directory_where_a_corpus_goes_is_one_line(corpus, tmp_path, capsys, monkeypatch):
    unit = write_unit(tmp_path, "e", n_docs=3)
    for cmd in ("status", "map"):
        rc, _, err = main(capsys, cmd, unit)
        assert rc == 2 and err.strip() == f"error: {unit}: cannot be read as a corpus (Not a directory)"
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    rc, _, err = main(capsys, "init", ".", unit)
    assert rc == 2 and "is the current directory" in err and not any((tmp_path / "here").iterdir())




def test_ctrl_c_ends_every_subcommand_in_one_line_saying_how_to_go_on(corpus, tmp_path, cli, monkeypatch):
    for name in ("add", "train_bpe", "_checked"):
        monkeypatch.setattr(C, name, ctrl_c)
    monkeypatch.setattr(C.Corpus, "check", ctrl_c)
    before, new = snapshot(corpus.dir), tmp_path / "new"
    f = write_unit(tmp_path, "d")
    for args, says in [(["add", corpus.dir, f], "run the same command again: units already added are kept"),
                       (["init", new, f], f"no corpus was made in {new}; run the same command again"),
                       (["map", corpus.dir], "run the same command again"),
                       (["status", corpus.dir], "run the same command again"),
                       (["check", corpus.dir], "run the same command again")]:
        r = cli(*args)
        assert (r.returncode, r.stderr) == (130, f"interrupted: {says}\n"), args
    assert snapshot(corpus.dir) == before and sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "d.jsonl", "src"]
    monkeypatch.undo()
    assert cli("init", new, f, "--vocab-size", "280").returncode == 0  # nothing in the way of doing it again


def test_an_init_stopped_once_its_corpus_is_in_place_says_to_add_to_it(tmp_path, cli, monkeypatch):
    monkeypatch.setattr(C, "fsync_dir", ctrl_c)  # after the rename that makes the corpus appear whole
    f, new = write_unit(tmp_path, "u"), tmp_path / "new"
    r = cli("init", new, f, "--vocab-size", "280")
    assert (r.returncode, r.stderr) == (130, f"interrupted: {new} was made whole; now run "
                                             f"`python curriculum.py add {new} FILES...`\n")
    monkeypatch.undo()
    assert C.Corpus(new).check() == 1 and sorted(p.name for p in tmp_path.iterdir()) == ["new", "u.jsonl"]


def added_units(corpus_dir):
    """The unit ids of the passport's unit_added events, in order (a unit added twice shows twice)."""
    return [e["unit"] for e in C.Passport(Path(corpus_dir) / "passport.jsonl").events("unit_added")]


@pytest.mark.parametrize("how, ends", [(signal.SIGKILL, (-signal.SIGKILL, "")),
                                       (signal.SIGINT, (130, "interrupted: run the same command again: units "
                                                             "already added are kept\n"))], ids=["kill", "ctrl-c"])
def test_add_killed_mid_batch_leaves_a_valid_corpus_and_a_rerun_completes(tmp_path, cli, how, ends):
    """SIGKILL (or Ctrl-C: one line saying so) once the first unit is committed, as the second is written:
    at that call, not once a file appears, which a fast add outruns."""
    files = [write_unit(tmp_path, f"u{i:02d}", n_docs=100) for i in range(40)]
    corpus = tmp_path / "corpus"
    C.init(corpus, files[:1], vocab_size=300)
    add = killed_at("curriculum.py", ["add", corpus, *files], "curriculum._write_unit", "True", nth=2, sig=how)
    assert (add.returncode, add.stderr) == ends  # stopped, not finished
    assert added_units(corpus) == ["u00"]
    assert cli("check", corpus).returncode == 0
    r = cli("add", corpus, *files)
    assert r.returncode == 0 and "u00: already added" in r.stdout
    assert added_units(corpus) == [f"u{i:02d}" for i in range(40)]  # each once, in curriculum order
    assert C.Corpus(corpus).check() == 41


def start_add(corpus, files):
    """An add of files as a real subprocess, started now."""
    return subprocess.Popen([sys.executable, str(ROOT / "curriculum.py"), "add", str(corpus), *map(str, files)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_adds_of_different_batches_at_once_add_every_unit_once(tmp_path):
    a = [write_unit(tmp_path, f"a{i}", n_docs=100) for i in range(10)]
    b = [write_unit(tmp_path, f"b{i}", n_docs=100) for i in range(10)]
    C.init(tmp_path / "corpus", a + b, vocab_size=300)
    adds = [start_add(tmp_path / "corpus", batch) for batch in (a, b)]
    assert [p.wait() for p in adds] == [0, 0], [p.stderr.read() for p in adds]
    assert sorted(added_units(tmp_path / "corpus")) == sorted([f"a{i}" for i in range(10)] + [f"b{i}" for i in range(10)])
    assert C.Corpus(tmp_path / "corpus").check() == 21  # the chain holds


def test_two_adds_of_the_same_batch_at_once_add_every_unit_once(tmp_path):
    files = [write_unit(tmp_path, f"u{i}", n_docs=100) for i in range(10)]
    C.init(tmp_path / "corpus", files, vocab_size=300)
    adds = [start_add(tmp_path / "corpus", files) for _ in range(2)]
    assert [p.wait() for p in adds] == [0, 0], [p.stderr.read() for p in adds]
    out = "".join(p.stdout.read() for p in adds)
    for i in range(10):  # one add adds it, the other then finds it added
        assert out.count(f"u{i}: added") == 1 and out.count(f"u{i}: already added") == 1
    assert added_units(tmp_path / "corpus") == [f"u{i}" for i in range(10)]
    assert C.Corpus(tmp_path / "corpus").check() == 11


def test_two_adds_at_once_cannot_slip_a_leak_past_each_other(tmp_path):
    """b's document states a's probe: whichever add goes second sees the other's unit and refuses."""
    a = [write_unit(tmp_path, f"a{i}", n_docs=100) for i in range(10)]
    b = [write_unit(tmp_path, f"b{i}", n_docs=100) for i in range(9)]
    b.append(write_unit(tmp_path, "leak", kind="primitive", lines=[
        header("leak", kind="primitive"), {"text": "Which color does the a3 herd favor? blue"}]))
    C.init(tmp_path / "corpus", a + b, vocab_size=300)
    adds = [start_add(tmp_path / "corpus", batch) for batch in (a, b)]
    assert sorted(p.wait() for p in adds) == [0, 2]
    assert "leakage" in "".join(p.stderr.read() for p in adds)
    assert len(added_units(tmp_path / "corpus")) == 10 and C.Corpus(tmp_path / "corpus").check() == 11


# -----------------------------------------------------------------------------
# gate feasibility: can a unit's probes pass evaluate.py verify's accuracy gate at all?


def test_fewer_than_six_probes_cannot_pass_the_gate_however_many_choices():
    """Five right of five two-choice probes happen 1 time in 32 by chance, 1 in 16 either way: under six
    independent observations none can be told from chance, and a perfect score clears it from six."""
    assert stats.gate_feasibility(2, 0.5) == {"min_perfect": 6, "min_correct": None, "can_pass": False,
                                              "clusters": None, "too_few_clusters": False}
    assert stats.gate_feasibility(5, 0.25)["can_pass"] is False
    assert stats.gate_feasibility(12, 0.25, clusters=5)["can_pass"] is False  # twelve probes on five entities


def test_probes_on_too_few_entities_are_told_to_rest_on_more_not_to_be_more():
    """Forty probes on three entities: more of them would not pass, and a perfect score "from 6 probes"
    they already have; probes that are too few themselves are told to be more."""
    f = stats.gate_feasibility(40, 0.25, clusters=3)
    g = {"unit": "u", "gate_on": "recall", "n": 40, "of": 80, "chance": 0.25, **f}
    assert C._describe_gate(g) == ("warning: u: the gate reads 40 of its 80 recall probes, chance 25%: cannot pass "
                                   "the gate, even with all 40 correct (its probes rest on 3 entities, fewer than "
                                   "6); give it probes about more entities")
    assert (f["can_pass"], f["clusters"], f["too_few_clusters"]) == (False, 3, True)
    assert stats.gate_feasibility(4, 0.25, clusters=2)["too_few_clusters"] is True  # four probes, two entities
    for n, clusters in ((5, 5), (5, None), (40, 8)):  # too few probes, each its own entity; or enough entities
        assert stats.gate_feasibility(n, 0.25, clusters=clusters)["too_few_clusters"] is False
    assert stats.gate_feasibility(40, 0.25, clear_of_chance=False, clusters=3) == {
        "min_perfect": 1, "min_correct": 20, "can_pass": True, "clusters": 3, "too_few_clusters": False}


def test_six_probes_of_four_choices_pass_with_four_correct():
    """Threshold 0.5 asks 3 of 6, but 3 of 6 resampled fall to 1 of 6 (17%, under chance) one time in
    nine; 4 of 6 fall to 1 of 6 under one time in forty. Without clear_of_chance, 3 of 6 and 1 of 1 do."""
    assert stats.gate_feasibility(6, 0.25) == {"min_perfect": 6, "min_correct": 4, "can_pass": True,
                                               "clusters": None, "too_few_clusters": False}
    assert stats.gate_feasibility(6, 0.25, clear_of_chance=False) == {"min_perfect": 1, "min_correct": 3,
                                                                       "can_pass": True, "clusters": None,
                                                                       "too_few_clusters": False}
    assert stats.gate_feasibility(0, 0.25)["can_pass"] is False


def test_gate_feasibility_agrees_with_the_gate_of_evaluate():
    import evaluate

    def passes(k, n, chance, threshold, clear):
        """The gate on k of n right, each probe on its own entity, its interval as verify computes it."""
        lo = stats.bootstrap_diff([1] * k + [0] * (n - k), [0] * n, list(range(n)))[1]
        return not evaluate.gate({"acc": k / n, "lo": lo, "chance": chance, "clusters": n}, {}, threshold,
                                 clear_of_chance=clear)

    for n in range(1, 17):
        for chance in (1 / 2, 1 / 4, 0.3):
            for threshold, clear in ((0.5, True), (0.7, True), (0.5, False)):
                f = stats.gate_feasibility(n, chance, threshold, clear)
                passing = [k for k in range(n + 1) if passes(k, n, chance, threshold, clear)]
                assert f["min_correct"] == (passing[0] if passing else None) and f["can_pass"] == bool(passing)
                assert passing == list(range(passing[0], n + 1) if passing else [])  # more correct never fails
                m = f["min_perfect"]
                assert passes(m, m, chance, threshold, clear)
                assert m == 1 or not passes(m - 1, m - 1, chance, threshold, clear)


def gated_unit(dir, uid, n_recall, n_inference=0, recall_choices=COLORS):
    """A knowledge unit with n_recall recall probes and n_inference two-choice inference probes."""
    probes = [{"probe": f"Which color does herd {i} of {uid} favor?", "answer": recall_choices[0],
               "choices": recall_choices, "type": "recall"} for i in range(n_recall)]
    probes += [{"probe": f"Is herd {i} of {uid} calm?", "answer": "yes", "choices": ["yes", "no"], "type": "inference"}
               for i in range(n_inference)]
    return write_unit(dir, uid, probes=probes)


def test_gate_report_reads_half_of_the_gated_type_or_else_half_of_all_probes(corpus, tmp_path):
    C.add(corpus.dir, [gated_unit(tmp_path, "g", 13, 3)], log=lambda *_: None)
    c = C.Corpus(corpus.dir)
    # 7 of 13 four-choice probes, each on its own herd: as gate_feasibility(7, 0.25) says of seven herds
    assert C.gate_report(c, "g") == {"unit": "g", "gate_on": "recall", "n": 7, "of": 13, "chance": 0.25,
                                     **stats.gate_feasibility(7, 0.25, clusters=7)}
    assert C.gate_report(c, "g")["min_correct"] == 5
    every = C.gate_report(c, "g", gate_on="all")
    read = C.gated_probes(c.probes("g"), "all")[0]
    chance = sum(1 / len(p["choices"]) for p in read) / 8
    assert (every["gate_on"], every["n"], every["of"], every["chance"]) == ("all", 8, 16, chance)
    assert C.gate_report(c, "g", gate_on="chain")["n"] == 8  # no chain probes: the gate reads half of them all
    inference = C.gate_report(c, "g", gate_on="inference")
    assert (inference["n"], inference["chance"], inference["can_pass"], inference["min_perfect"]) == (2, 0.5, False, 6)


def test_gate_report_counts_the_entities_its_probes_rest_on(corpus, tmp_path):
    probes = [{"probe": f"Which color does herd {i} favor?", "answer": "red", "choices": COLORS, "type": "recall",
               "cluster": f"herd {i % 8}"} for i in range(24)]  # 24 probes on 8 herds: the gate reads 4 herds
    C.add(corpus.dir, [write_unit(tmp_path, "herds", probes=probes)], log=lambda *_: None)
    g = C.gate_report(C.Corpus(corpus.dir), "herds")
    assert (g["n"], g["can_pass"], g["min_perfect"]) == (12, False, 6)  # twelve probes, four entities
    assert (g["clusters"], g["too_few_clusters"]) == (4, True)
    assert C._describe_gate(g).endswith("(its probes rest on 4 entities, fewer than 6); give it probes about more "
                                        "entities")


def test_the_gate_half_takes_whole_clusters_the_same_way_every_time():
    probes = [{"probe": f"q{i}", "cluster": f"fact {i // 3}"} for i in range(30)]  # ten facts, three probes each
    half = C.gate_half(probes)
    clusters = {p["cluster"] for p in half}
    assert len(clusters) == 5 and len(half) == 15  # ceil(10 / 2) whole clusters
    assert all((p in half) == (p["cluster"] in clusters) for p in probes)
    assert C.gate_half(list(reversed(probes))) == list(reversed(half))  # by the clusters' hashes, not their order
    unclustered = [{"probe": f"q{i}"} for i in range(7)]
    assert len(C.gate_half(unclustered)) == 4 and C.gate_half(unclustered[:1]) == unclustered[:1]
    assert C.gate_half([]) == []


def test_add_says_what_each_knowledge_unit_needs_to_pass_and_warns_when_it_cannot(corpus, tmp_path):
    said = []
    files = [gated_unit(tmp_path, "twelve", 12), gated_unit(tmp_path, "two", 2, recall_choices=["yes", "no"]),
             write_unit(tmp_path, "plain", kind="primitive")]
    C.add(corpus.dir, files, log=said.append)
    gate_lines = [s for s in said if "probes" in s]
    assert gate_lines == [
        "twelve: the gate reads 6 of its 12 recall probes, chance 25%: needs at least 4 of 6 correct; a "
        "perfect score clears chance from 6 probes",
        "warning: two: the gate reads 1 of its 2 recall probes, chance 50%: cannot pass the gate, even with all 1 "
        "correct (a perfect score clears chance from 6 probes); give it more probes"]


def test_cli_add_takes_the_gate_settings(corpus, tmp_path, capsys):
    rc, out, _ = main(capsys, "add", corpus.dir, gated_unit(tmp_path, "two", 2, recall_choices=["yes", "no"]),
                      "--no-clear-of-chance", "--threshold", "0.5")
    assert rc == 0 and "two: the gate reads 1 of its 2 recall probes, chance 50%: needs at least 1 of 1 " \
        "correct\n" in out
    rc, out, _ = main(capsys, "add", corpus.dir, gated_unit(tmp_path, "mixed", 9, 7), "--gate-on", "all")
    # the gate reads 8 of the 16: 5 recall and 3 inference probes, chance (5/4 + 3/2) / 8 = 0.34
    assert rc == 0 and ("mixed: the gate reads 8 of its 16 probes (all types), chance 34%: needs at least 6 "
                        "of 8 correct; a perfect score clears chance from 6 probes") in out
    before = snapshot(corpus.dir)
    rc, _, err = main(capsys, "add", corpus.dir, gated_unit(tmp_path, "x", 5), "--threshold", "1.5")
    assert rc == 2 and "threshold 1.5: it must be an accuracy, between 0 and 1" in err
    assert snapshot(corpus.dir) == before


def test_add_refuses_a_gate_type_that_no_unit_has_and_writes_nothing(corpus, tmp_path, capsys):
    """A typo was told "the gate reads 4 of its 8 probes (all types)" and added, as evaluate.py verify refuses it."""
    before = snapshot(corpus.dir)
    rc, out, err = main(capsys, "add", corpus.dir, gated_unit(tmp_path, "g", 8), "--gate-on", "recal")
    assert (rc, out, err) == (2, "", "error: --gate-on recal: no unit has probes of that type (all: every type)\n")
    assert snapshot(corpus.dir) == before
    # a type of a unit the corpus holds is no typo: a new unit without it is gated on all its types
    rc, out, _ = main(capsys, "add", corpus.dir, gated_unit(tmp_path, "i", 0, 8), "--gate-on", "recall")
    assert rc == 0 and "i: the gate reads 4 of its 8 probes (all types), chance 50%" in out
    rc, out, _ = main(capsys, "add", corpus.dir, write_unit(tmp_path, "p", kind="primitive"), "--gate-on", "recal")
    assert rc == 0 and out.startswith("p: added (") and out.count("\n") == 1  # no knowledge unit to tell of a gate

def test_every_cli_argument_has_a_help_sentence():
    parsers = [C._parser()]
    parsers += list(next(a for a in parsers[0]._actions if a.dest == "cmd").choices.values())
    for p in parsers:
        for a in p._actions:
            assert a.help and len(a.help) > 10, (p.prog, a.dest)
            if a.choices and a.dest != "cmd":
                assert all(c in a.help for c in a.choices), (p.prog, a.dest)


def test_cli_check_of_a_directory_that_is_no_corpus_says_so(tmp_path, capsys):
    rc, _, err = main(capsys, "check", tmp_path, "--repair")
    assert rc == 2 and f"{tmp_path}: not a corpus (no passport.jsonl)" in err


@pytest.mark.parametrize("kind", ["", " \t"])
def test_add_refuses_a_probe_of_empty_type(corpus, tmp_path, kind):
    probe = {"probe": "Which color does the d herd favor?", "answer": "red", "choices": COLORS, "type": kind}
    unit = write_unit(tmp_path, "d", probes=[probe])
    assert_rejected(corpus, [unit], f"{unit}:14: probe type must be a non-empty string")


def premised(dir, uid, requires, premise):
    """A unit whose one inference probe rests on premise, with a recall probe of its own."""
    probes = [{"probe": f"Which color does the {uid} herd favor?", "answer": "red", "choices": COLORS, "type": "recall"},
              {"probe": f"Which color does the {uid} calf favor?", "answer": "red", "choices": COLORS,
               "type": "inference", "premises": [f"Which color does the {uid} herd favor?", premise]}]
    return write_unit(dir, uid, level=3, requires=requires, probes=probes)


def test_add_refuses_a_premise_that_no_probe_of_the_unit_or_its_requirements_asks(corpus, tmp_path):
    """A premise that names no probe was taken: the composition report could only count it "not found"."""
    for premise, requires in (("Which color is no herd?", ["c"]), ("Which color does the c herd favor?", ["a"])):
        unit = premised(tmp_path, "d", requires, premise)
        assert_rejected(corpus, [unit], f"{unit}:15: premise {premise!r} is the prompt of no probe of unit 'd' or "
                                        "of the units it requires")
    # one of a unit required through others, or of a unit required in the same batch, is found
    (tmp_path / "e").mkdir()
    batch = [premised(tmp_path, "d", ["c"], "Which color does the a herd favor?"),
             premised(tmp_path / "e", "e", ["d"], "Which color does the d calf favor?")]
    assert C.add(corpus.dir, batch, log=lambda *_: None) == ["d", "e"]


def test_corpus_probes_carry_cluster_and_premises(corpus, tmp_path):
    probes = [{"probe": "Which color does the d herd favor?", "answer": "red", "choices": COLORS, "type": "recall",
               "cluster": "d herd"},
              {"probe": "Which color does the d calf favor?", "answer": "red", "choices": COLORS, "type": "inference",
               "cluster": "d calf", "premises": ["Which color does the d herd favor?"]}]
    C.add(corpus.dir, [write_unit(tmp_path, "d", probes=probes)], log=lambda *_: None)
    assert C.Corpus(corpus.dir).probes("d") == [{**p, "unit": "d"} for p in probes]


def test_gate_read_follows_what_each_verdict_s_gate_read(corpus, tmp_path):
    """Today's verdicts keep the sha256 of the half they read; older ones read the whole gated type
    (their count says so), and the oldest, with no gated record, every probe."""
    from report import probes_sha256
    C.add(corpus.dir, [gated_unit(tmp_path, "g", 6, 3)], log=lambda *_: None)
    probes = C.Corpus(corpus.dir).probes("g")
    half, recall = C.gated_probes(probes, "recall")[0], [p for p in probes if p["type"] == "recall"]
    assert 0 < len(half) < len(recall) < len(probes)
    verdict = lambda **gated: {"unit": "g", **({"gated": {"types": ["recall"], **gated}} if gated else {})}
    assert C.gate_read(verdict(probes_sha256=probes_sha256(half), after={"n": len(half)}), probes, "c") == half
    assert C.gate_read(verdict(after={"n": len(half)}), probes, "c") == half
    assert C.gate_read(verdict(after={"n": len(recall)}), probes, "c") == recall  # before the gate read half
    assert C.gate_read(verdict(), probes, "c") == probes  # before the gate read one type
    for bad in (verdict(probes_sha256=probes_sha256(recall)), verdict(after={"n": 1})):
        with pytest.raises(CurriculumError, match="c: the gate that verified 'g' read other probes"):
            C.gate_read(bad, probes, "c")
    # and the corpus reads each unit's latest verdict so
    C.Corpus(corpus.dir).passport.append("unit_verified", passed=True, **verdict(after={"n": len(recall)}))
    assert C.Corpus(corpus.dir).gate_reads(["g", "none"]) == {"g": recall}
    # a stale verdict of another unit is no business of these units'
    C.Corpus(corpus.dir).passport.append("unit_verified", unit="a", passed=False, gated={"types": ["recall"],
                                                                                      "after": {"n": 10 ** 6}})
    assert C.Corpus(corpus.dir).gate_reads(["g"]) == {"g": recall}
    with pytest.raises(CurriculumError, match="read other probes"):
        C.Corpus(corpus.dir).gate_reads(["a"])
