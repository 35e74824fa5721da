"""Tests for passport.py: a hash-chained, append-only event log that detects edits and truncation."""
import hashlib
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
import passport as P  # noqa: E402
from in_process import run_main  # noqa: E402
from passport import GENESIS, Passport  # noqa: E402
from units import CurriculumError  # noqa: E402


@pytest.fixture
def passport(tmp_path):
    """A passport of an init and three unit_added events."""
    p = Passport(tmp_path / "passport.jsonl")
    p.append("init", tokenizer="t", vocab_size=300, tokenizer_hash="ab")
    for u in ("a", "b", "c"):
        p.append("unit_added", unit=u, tokens=10)
    return p


def test_each_event_holds_the_sha256_of_the_line_before_it(passport):
    lines = passport.path.read_bytes().split(b"\n")[:-1]
    prevs = [json.loads(line)["prev"] for line in lines]
    assert prevs == [GENESIS] + [hashlib.sha256(line).hexdigest() for line in lines[:-1]]
    assert passport.check() == 4


def test_append_returns_the_event_and_events_filters_by_name(passport):
    e = passport.append("model_trained", mode="pretrain", selection={"units": ["a"]}, tokens=123, checkpoint="ab")
    assert e["event"] == "model_trained" and e["tokens"] == 123 and e["time"].endswith("Z")
    assert passport.events("model_trained") == [e]
    assert [x["unit"] for x in passport.events("unit_added")] == ["a", "b", "c"] and len(passport.events()) == 5


def test_unknown_event_and_reserved_fields_are_refused(passport):
    with pytest.raises(CurriculumError, match="unknown passport event 'trained_something'"):
        passport.append("trained_something")
    with pytest.raises(CurriculumError, match="'event', 'time' and 'prev' are set by the passport itself"):
        passport.append("adapter_trained", prev="0")
    assert passport.check() == 4


def test_edited_middle_line_is_detected_where_the_chain_breaks(passport):
    lines = passport.path.read_text().splitlines(keepends=True)
    lines[2] = lines[2].replace('"tokens":10', '"tokens":11')
    passport.path.write_text("".join(lines))
    with pytest.raises(CurriculumError, match=r"passport.jsonl:4: line 4 does not follow line 3 .*: a line edited, "
                                              "removed, reordered or repeated$"):
        passport.check()


@pytest.mark.parametrize("how, order, breaks", [
    ("line 2 removed", [0, 2, 3], 2), ("lines 2 and 3 swapped", [0, 2, 1, 3], 2),
    ("the last line repeated", [0, 1, 2, 3, 3], 5), ("line 1 removed", [1, 2, 3], 1)])
def test_a_line_removed_reordered_or_repeated_is_named_where_the_chain_breaks_not_as_an_edit(passport, how, order,
                                                                                              breaks):
    lines = passport.path.read_bytes().split(b"\n")[:-1]
    passport.path.write_bytes(b"".join(lines[i] + b"\n" for i in order))
    with pytest.raises(CurriculumError) as e:
        passport.check()
    follows = f"line {breaks} does not follow line {breaks - 1}" if breaks > 1 else "line 1 does not begin the chain"
    assert str(e.value).startswith(f"{passport.path}:{breaks}: {follows} "), how
    assert "was edited" not in str(e.value) and "\n" not in str(e.value)


def test_a_line_nested_too_deeply_for_the_json_parser_is_named_not_a_traceback(passport):
    """json.loads raises RecursionError, no ValueError, on "[" * 100000: it is a damaged line like any other."""
    with open(passport.path, "ab") as f:
        f.write(b"[" * 100_000 + b"]" * 100_000 + b"\n")
    for read in (passport.check, passport.events):
        with pytest.raises(CurriculumError, match=r"passport.jsonl:5: not a passport event \(edited or corrupted\)"):
            read()


def test_a_bad_byte_or_a_line_without_an_event_is_named_not_a_traceback(passport):
    good = passport.path.read_bytes()
    lines = good.split(b"\n")
    for bad in (lines[1][:10] + b"\xff" + lines[1][10:], b'{"prev": "' + hashlib.sha256(lines[0]).hexdigest().encode() + b'"}'):
        passport.path.write_bytes(b"\n".join([lines[0], bad] + lines[2:]))
        for read in (passport.check, passport.events):
            with pytest.raises(CurriculumError, match=r"passport.jsonl:2: not a passport event"):
                read()


def test_an_event_without_a_field_its_reader_needs_is_named(tmp_path):
    p = Passport(tmp_path / "passport.jsonl")
    p.append("init", tokenizer_hash="ab")
    p.append("unit_added", unit="a", shards={"train": "ee", "val": "ff"})
    p.append("unit_added", unit="b", shards={"val": "ff"})
    p.append("unit_added", unit="c", shards="ff")
    assert p.events("init", ("tokenizer_hash",))[0]["tokenizer_hash"] == "ab"  # only the events asked are read
    assert [e["unit"] for e in p.events("unit_added", ("unit",))] == ["a", "b", "c"]
    with pytest.raises(CurriculumError, match=r"passport.jsonl:3: unit_added event without shards.train"):
        p.events("unit_added", ("unit", "shards.train"))
    with pytest.raises(CurriculumError, match=r"passport.jsonl:4: unit_added event without shards.val"):
        p.events("unit_added", ("shards.val",))  # a string is no dict of shards
    with pytest.raises(CurriculumError, match=r"passport.jsonl:1: init event without vocab_size"):
        p.events("init", ("vocab_size",))


def test_the_head_changes_with_an_edit_of_the_last_line_that_the_chain_cannot_see(passport):
    head = passport.head()
    assert head == hashlib.sha256(passport.path.read_bytes().split(b"\n")[-2]).hexdigest()
    passport.path.write_bytes(passport.path.read_bytes().replace(b'"unit":"c"', b'"unit":"d"'))
    assert passport.check() == 4 and passport.head() != head  # the chain holds; only a recorded head shows it
    assert Passport(passport.path.with_name("none.jsonl")).head() == GENESIS


def test_a_recorded_head_is_found_until_lines_are_cut_or_the_last_one_edited(passport):
    lines = passport.path.read_bytes().split(b"\n")[:-1]
    heads = [hashlib.sha256(line).hexdigest() for line in lines]
    assert [passport.line_of(h) for h in heads] == [1, 2, 3, 4] and passport.line_of(GENESIS) == 0
    head = passport.head()
    passport.append("unit_verified", unit="c", passed=True)  # the passport grew: the old head is still there
    assert passport.line_of(head) == 4
    passport.path.write_bytes(b"\n".join(lines[:3]) + b"\n")  # the last two lines cut: the chain holds
    assert passport.check() == 3 and passport.line_of(head) is None


def test_torn_last_line_is_detected_refused_and_repaired(passport):
    data = passport.path.read_bytes()
    passport.path.write_bytes(data[:-20])  # a crash mid-append
    with pytest.raises(CurriculumError, match="passport.jsonl:4: incomplete final line"):
        passport.check()
    with pytest.raises(CurriculumError, match="the last line lacks its newline"):
        passport.append("adapter_trained", unit="a")
    kept = data.rstrip(b"\n").rfind(b"\n") + 1
    assert passport.repair() == f"dropped an incomplete final passport line ({len(data) - 20 - kept} bytes)"
    assert passport.path.read_bytes() == data[:kept]  # only the torn line went
    assert passport.check() == 3 and passport.repair() is None


def test_a_whole_last_event_lacking_only_its_newline_gets_it_back_not_dropped(passport):
    """repair dropped it as torn: a complete, chained event (a model_trained, say) was lost."""
    data = passport.path.read_bytes()
    passport.path.write_bytes(data[:-1])
    with pytest.raises(CurriculumError) as e:
        passport.check()
    assert str(e.value) == (f"{passport.path}:4: the final line lacks its newline, though it is a whole event; "
                            "run `python curriculum.py check CORPUS --repair` to give it its newline back")
    with pytest.raises(CurriculumError, match="the last line lacks its newline .*gives a whole event its newline"):
        passport.append("adapter_trained", unit="a")
    assert passport.path.read_bytes() == data[:-1]  # the refused append wrote nothing
    assert passport.repair() == "gave the final passport line (line 4, a whole event) its newline back"
    assert passport.path.read_bytes() == data and passport.check() == 4


def test_a_last_line_of_json_that_does_not_follow_is_neither_completed_nor_dropped(passport):
    stray = passport.path.read_bytes() + b'{"event":"unit_added","prev":"' + b"1" * 64 + b'"}'  # no chain
    passport.path.write_bytes(stray)
    for act in (passport.check, passport.repair):
        with pytest.raises(CurriculumError) as e:
            act()
        assert str(e.value) == (f"{passport.path}:5: the final line lacks its newline and is JSON, but not the "
                                "event that follows line 4 (edited by hand?); --repair leaves it: fix or remove it "
                                "by hand")
    assert passport.path.read_bytes() == stray


def test_a_byte_order_mark_is_named_not_reported_as_a_broken_chain(passport):
    """An editor saving the passport with a BOM: it was "line 2 does not follow line 1"."""
    passport.path.write_bytes(b"\xef\xbb\xbf" + passport.path.read_bytes())
    for read in (passport.check, passport.events):
        with pytest.raises(CurriculumError) as e:
            read()
        assert str(e.value).startswith(f"{passport.path}:1: begins with a UTF-8 byte order mark (saved by an "
                                       "editor?); remove those 3 bytes (EF BB BF)")
    passport.path.write_bytes(passport.path.read_bytes()[3:])
    assert passport.check() == 4


@pytest.mark.parametrize("reader", ["check", "head", "repair"])
def test_a_reader_waits_for_a_line_being_appended_instead_of_reading_half_of_it(passport, reader):
    """An appender holds the lock while its line is half written: check and head would call the passport
    torn, and repair would cut the line another process is still writing."""
    import fcntl
    import threading
    result = {}

    def read():
        try:
            result["value"] = getattr(passport, reader)()
        except CurriculumError as e:
            result["error"] = str(e)

    line = json.dumps({"event": "unit_added", "prev": passport.head(), "unit": "d"}).encode() + b"\n"
    with open(passport.path, "ab") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # as append holds it
        f.write(line[:20])
        f.flush()
        t = threading.Thread(target=read)
        t.start()
        t.join(0.3)
        assert t.is_alive()  # waiting for the appender, not reading the half line
        f.write(line[20:])
        f.flush()
    t.join(10)
    assert "error" not in result, result.get("error")
    assert result["value"] == {"check": 5, "head": hashlib.sha256(line[:-1]).hexdigest(), "repair": None}[reader]


def test_the_command_line_refuses_a_passport_without_events_or_not_beginning_with_init(tmp_path, capsys):
    """An empty file was "ok: 0 events", though curriculum.py refuses it: no init event."""
    path = tmp_path / "passport.jsonl"
    path.write_bytes(b"")
    p = run_main(P.main, [path], capsys)
    assert (p.returncode, p.stdout, p.stderr) == (2, "", f"error: {path}: no events, so no init event (a corpus's "
                                                         "passport begins with the one `curriculum.py init` writes)\n")
    Passport(path).append("unit_added", unit="a", tokens=10)
    Passport(path).append("init", tokenizer_hash="ab")
    p = run_main(P.main, [path], capsys)
    assert (p.returncode, p.stdout, p.stderr) == (2, "", f"error: {path}:1: a unit_added event, not init (a corpus's "
                                                         "passport begins with the one `curriculum.py init` writes)\n")
    path.unlink()
    Passport(path).append("init", tokenizer_hash="ab")
    Passport(path).append("unit_added", unit="a", tokens=10)
    p = run_main(P.main, [path], capsys)
    assert (p.returncode, p.stdout, p.stderr) == (0, f"ok: 2 events (init 1, unit_added 1); last line sha256 "
                                                     f"{Passport(path).head()}\n", "")


def test_the_command_line_names_a_directory_a_directory_not_a_missing_file(tmp_path, capsys):
    p = run_main(P.main, [tmp_path], capsys)
    assert (p.returncode, p.stderr) == (2, f"error: {tmp_path}: is a directory, not a passport file "
                                           "(CORPUS/passport.jsonl)\n")
