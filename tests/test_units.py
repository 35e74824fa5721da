"""Tests for units.py: the unit file format; each error names the file and line."""
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
from unit_files import COLORS, header, write_unit  # noqa: E402
from units import CurriculumError, chunks, inspect_unit, normalize, read_unit  # noqa: E402


def rejected(path, *fragments):
    """read_unit(path) fails naming all fragments."""
    with pytest.raises(CurriculumError) as e:
        read_unit(path)
    for f in fragments:
        assert f in str(e.value), str(e.value)


def test_read_unit_returns_header_documents_and_probes(tmp_path):
    h, docs, probes = read_unit(write_unit(tmp_path, "u", n_docs=3))
    assert h["unit"] == "u" and len(docs) == 3 and docs[0].startswith("Creature 0")
    assert probes == [{"probe": "Which color does the u herd favor?", "answer": "blue", "choices": COLORS,
                       "type": "recall", "unit": "u"}]


def test_inspect_counts_documents_and_probes_and_drops_the_concepts(tmp_path):
    info = inspect_unit(write_unit(tmp_path, "u", n_docs=5))
    assert (info["n_docs"], info["n_probes"], info["line"]) == (5, 1, 1)
    assert "concepts" not in info["header"] and info["header"]["unit"] == "u" and len(info["sha256"]) == 64


def test_invalid_json_is_rejected_with_file_and_line(tmp_path):
    p = write_unit(tmp_path, "bad")
    p.write_text(p.read_text().replace('{"text": "Creature 1', '{"text": Creature 1', 1))
    rejected(p, f"{p}:3:", "invalid JSON")
    # an unclosed record: the column where it ends on its own line, not column 1 of the next
    lines = p.read_text().splitlines(keepends=True)
    p.write_text("".join(lines[:2]) + '{"text": "bad json"\n')
    rejected(p, f"{p}:3:", "invalid JSON (Expecting ',' delimiter, column 20)")  # just past its 19 characters


def test_invalid_utf8_is_rejected_with_file_and_line(tmp_path):
    p = write_unit(tmp_path, "bad")
    lines = p.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b"river", b"riv\xff\xfer")
    p.write_bytes(b"\n".join(lines))
    rejected(p, f"{p}:3:", "invalid UTF-8")


def test_missing_file_is_rejected(tmp_path):
    rejected(tmp_path / "nowhere.jsonl", "nowhere.jsonl: no such unit file")


def test_a_directory_is_named_a_directory_not_a_missing_file(tmp_path):
    (tmp_path / "units.jsonl").mkdir()
    with pytest.raises(CurriculumError) as e:
        inspect_unit(tmp_path / "units.jsonl")
    assert str(e.value) == f"{tmp_path / 'units.jsonl'}: is a directory, not a unit file (.jsonl)"

def test_missing_header_is_rejected(tmp_path):
    rejected(write_unit(tmp_path, "bad", lines=[{"text": "a document without a header"}]), "bad.jsonl:1:",
             "missing header")


def test_missing_header_field_is_rejected(tmp_path):
    h = header("bad")
    del h["license"]
    p = write_unit(tmp_path, "bad", lines=[h, {"text": "some text"}])
    rejected(p, f"{p}:1:", "missing field 'license'")


def test_missing_probe_field_is_rejected(tmp_path):
    p = write_unit(tmp_path, "bad", probes=[{"probe": "Which color?", "answer": "blue", "type": "recall"}])
    rejected(p, f"{p}:14:", "missing field 'choices'")


def test_unknown_kind_is_rejected(tmp_path):
    p = write_unit(tmp_path, "bad", kind="trivia")
    rejected(p, f"{p}:1:", "unknown kind 'trivia'")


def test_non_integer_level_is_rejected(tmp_path):
    p = write_unit(tmp_path, "bad", lines=[{**header("bad"), "level": "1"}, {"text": "x"}])
    rejected(p, f"{p}:1:", "level must be a non-negative integer, got '1'")


def test_unit_id_that_cannot_name_a_file_is_rejected(tmp_path):
    p = write_unit(tmp_path, "bad", lines=[header("../up"), {"text": "x"}])
    rejected(p, f"{p}:1:", "unit id '../up' must be 1-100 letters")
    p = write_unit(tmp_path, "long", lines=[header("a" * 101), {"text": "x"}])  # too long for a file name's suffixes
    rejected(p, f"{p}:1:", "must be 1-100 letters")


def test_a_lone_surrogate_escape_or_json_nested_too_deeply_is_named(tmp_path):
    p = tmp_path / "s.jsonl"
    p.write_text(json.dumps(header("s", kind="primitive")) + "\n" + '{"text": "half \\ud800 a pair"}\n')
    rejected(p, f"{p}:2:", "surrogate")
    p.write_text(json.dumps(header("s", kind="primitive")) + "\n" + '{"text": "a whole pair \\ud83d\\ude00"}\n')
    assert read_unit(p)[1] == ["a whole pair \U0001F600"]
    p.write_text(json.dumps(header("s", kind="primitive")) + "\n" + "[" * 100_000 + "\n")
    rejected(p, f"{p}:2:", "nested too deeply")


def test_knowledge_unit_without_probes_is_rejected(tmp_path):
    p = write_unit(tmp_path, "bad", lines=[header("bad"), {"text": "a fact"}])
    rejected(p, f"{p}:1:", "has no probes")


def test_knowledge_unit_without_documents_is_rejected(tmp_path):
    rejected(write_unit(tmp_path, "bad", n_docs=0), "bad.jsonl:1:", "has no documents")


def test_answer_not_among_choices_is_rejected(tmp_path):
    p = write_unit(tmp_path, "bad", n_docs=2, probes=[{"probe": "Color?", "answer": "teal", "choices": COLORS,
                                                       "type": "recall"}])
    rejected(p, f"{p}:4:", "answer 'teal' is not among its choices")
    # an answer that only reads as a choice (a letter and its combining accent, the choice's letter composed)
    p = write_unit(tmp_path, "nfd", n_docs=2, probes=[{"probe": "Dish?", "answer": "cre\u0300me", "choices":
                                                       ["cr\u00e8me", "milk"], "type": "recall"}])
    rejected(p, f"{p}:4:", "answer 'cre\u0300me' is not among its choices ['cr\u00e8me', 'milk'] ('cr\u00e8me' reads the "
             "same but is written in other characters: 'cr\\xe8me' against 'cre\\u0300me')")


def test_a_repeated_choice_is_rejected(tmp_path):
    p = write_unit(tmp_path, "bad", n_docs=2, probes=[{"probe": "Color?", "answer": "red", "choices": ["red", "blue",
                                                       "red"], "type": "recall"}])
    rejected(p, f"{p}:4:", "choices repeat 'red'")


def test_a_repeated_probe_prompt_is_rejected_naming_both_lines(tmp_path):
    probes = [{"probe": "Color?", "answer": "red", "choices": COLORS, "type": "recall"},
              {"probe": "color? ", "answer": "blue", "choices": COLORS, "type": "recall"}]
    p = write_unit(tmp_path, "bad", n_docs=2, probes=probes)
    rejected(p, f"{p}:5:", "probe repeats the prompt of line 4")


@pytest.mark.parametrize("twin", ["cafe\u0301", "café ", "ca\u200bfé", "ｃａｆé"],
                         ids=["combining accent", "trailing space", "zero-width space", "full-width letters"])
def test_choices_a_reader_cannot_tell_apart_are_one_repeated_choice(tmp_path, twin):
    # each pair was accepted: one option counted twice, so chance was a third where it is a half
    p = write_unit(tmp_path, "bad", n_docs=2, probes=[{"probe": "Drink?", "answer": "tea",
                                                       "choices": ["café", "tea", twin], "type": "recall"}])
    rejected(p, f"{p}:4: choices repeat 'café' (as {twin!r}, which reads the same)")


def test_prompts_a_reader_cannot_tell_apart_are_one_repeated_prompt(tmp_path):
    probes = [{"probe": "Where is the café?", "answer": "red", "choices": COLORS, "type": "recall"},
              {"probe": "WHERE IS THE CAFE\u0301?", "answer": "blue", "choices": COLORS, "type": "recall"}]
    p = write_unit(tmp_path, "bad", n_docs=2, probes=probes)
    rejected(p, f"{p}:5:", "probe repeats the prompt of line 4")


def test_a_probe_type_with_spaces_around_it_is_refused(tmp_path):
    # "recall " was a type of its own: the gate, which reads recall, silently passed over its probes
    p = write_unit(tmp_path, "bad", n_docs=2, probes=[{"probe": "Color?", "answer": "red", "choices": COLORS,
                                                       "type": "recall "}])
    rejected(p, f"{p}:4:", "probe type 'recall ' has spaces around it")


def test_a_prompt_or_choice_of_invisible_characters_alone_is_refused(tmp_path):
    # read as "", a prompt would leave the leak check the answer alone: every document naming it a leak
    for fields in ({"probe": "\u200b"}, {"choices": ["red", "\u200b\u00ad"]}):
        p = write_unit(tmp_path, "bad", n_docs=2, probes=[{"probe": "Color?", "answer": "red", "choices": COLORS,
                                                           "type": "recall", **fields}])
        rejected(p, f"{p}:4: " + ("probe prompt must be" if "probe" in fields else "choices must be"))


def test_a_choice_with_spaces_around_it_is_refused(tmp_path):
    # each choice is scored after one space: " swamp" read as "  swamp", whose extra space token cost it
    # some 28 nats, so it could never win
    p = write_unit(tmp_path, "bad", n_docs=2, probes=[{"probe": "Color?", "answer": " red",
                                                       "choices": [" red", "blue", "green"], "type": "recall"}])
    rejected(p, f"{p}:4:", "choice ' red' has spaces around it (each choice is read after one space)")


def test_a_line_both_document_and_probe_or_an_overlong_integer_is_named(tmp_path):
    p = write_unit(tmp_path, "bad", n_docs=2, probes=[{"text": "Blips like rain.", "probe": "Color?", "answer": "red",
                                                       "choices": COLORS, "type": "recall"}])
    rejected(p, f"{p}:4:", "both a document")
    p = tmp_path / "long.jsonl"
    p.write_text('{"unit": "long", "level": ' + "1" * 5000 + "}\n")
    rejected(p, f"{p}:1:", "invalid JSON")


def test_normalize_makes_whitespace_runs_one_space():
    assert normalize("  the\tdam \n herd  ") == "the dam herd"


def test_chunks_group_items_by_characters_in_order():
    items = [(i, "x" * 10) for i in range(7)]
    assert [len(c) for c in chunks(items, max_chars=30)] == [3, 3, 1]
    assert [i for c in chunks(items, max_chars=30) for i, _ in c] == list(range(7))


def test_probe_cluster_and_premises_are_optional_and_passed_through(tmp_path):
    probes = [{"probe": "Which color does the dam herd favor?", "answer": "blue", "choices": COLORS, "type": "recall",
               "cluster": "dam herd"},
              {"probe": "Which color does the dam calf favor?", "answer": "blue", "choices": COLORS,
               "type": "inference", "cluster": "dam calf", "premises": ["Which color does the dam herd favor?"]},
              {"probe": "Where does the dam herd graze?", "answer": "river", "choices": ["river", "hill"],
               "type": "recall"}]
    _, _, read = read_unit(write_unit(tmp_path, "u", n_docs=2, probes=probes))
    assert read[0]["cluster"] == "dam herd" and "premises" not in read[0]
    assert read[1]["cluster"] == "dam calf" and read[1]["premises"] == ["Which color does the dam herd favor?"]
    assert read[2] == {**probes[2], "unit": "u"}  # neither field: the probe dict is as before


@pytest.mark.parametrize("cluster", ["", "  ", 7, ["dam"], None])
def test_probe_cluster_that_is_not_a_non_empty_string_is_rejected(tmp_path, cluster):
    probe = {"probe": "Color?", "answer": "blue", "choices": COLORS, "type": "recall", "cluster": cluster}
    p = write_unit(tmp_path, "bad", n_docs=2, probes=[probe])
    rejected(p, f"{p}:4:", "probe cluster must be a non-empty string", repr(cluster))


@pytest.mark.parametrize("premises", ["Color?", [1], ["Color?", ""], None, {"a": "b"}])
def test_probe_premises_that_are_not_a_list_of_strings_are_rejected(tmp_path, premises):
    probe = {"probe": "Color?", "answer": "blue", "choices": COLORS, "type": "recall", "premises": premises}
    p = write_unit(tmp_path, "bad", n_docs=2, probes=[probe])
    rejected(p, f"{p}:4:", "probe premises must be a list of non-empty strings", repr(premises))


@pytest.mark.parametrize("kind", ["", "  "])
def test_an_empty_probe_type_is_rejected(tmp_path, kind):
    """Reports group probes by type: an empty one was accepted, and became a row without a name."""
    probe = {"probe": "Color?", "answer": "blue", "choices": COLORS, "type": kind}
    p = write_unit(tmp_path, "bad", n_docs=2, probes=[probe])
    with pytest.raises(CurriculumError) as e:
        read_unit(p)
    assert str(e.value) == f"{p}:4: probe type must be a non-empty string (recall, or the kind of reasoning it " \
                           f"tests), got {kind!r}"


def test_inspect_unit_keeps_the_premises_no_probe_of_the_unit_asks(tmp_path):
    """add looks those up in the units it requires; the unit's own are resolved in its one pass."""
    probes = [{"probe": "Herd?", "answer": "blue", "choices": COLORS, "type": "recall"},
              {"probe": "Calf?", "answer": "blue", "choices": COLORS, "type": "inference",
               "premises": ["Herd?", "Elsewhere?"]}]
    assert inspect_unit(write_unit(tmp_path, "u", n_docs=2, probes=probes))["premises"] == [(5, "Elsewhere?")]


def test_an_empty_premises_list_is_accepted(tmp_path):
    probe = {"probe": "Color?", "answer": "blue", "choices": COLORS, "type": "recall", "premises": []}
    assert read_unit(write_unit(tmp_path, "u", n_docs=2, probes=[probe]))[2][0]["premises"] == []


@pytest.mark.parametrize("uid", ["knowledge", "Primitive", "all", "VERIFIED", "rejected", "untested"])
def test_a_unit_id_that_is_a_selection_s_word_is_rejected(tmp_path, uid):
    """--units knowledge selects every knowledge unit: a unit of that name could never be chosen alone."""
    rejected(write_unit(tmp_path, uid, n_docs=2), ":1:", f"unit id {uid!r} is a selection's word")


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_json_constants_that_json_lacks_are_rejected(tmp_path, constant):
    p = write_unit(tmp_path, "u", n_docs=2)
    p.write_text(p.read_text().replace('"text": "Creature 1', f'"weight": {constant}, "text": "Creature 1', 1))
    rejected(p, f"{p}:3:", f"{constant} is not a JSON value")


@pytest.mark.parametrize("choices", [["", "blue"], ["blue", "  "]])
def test_an_empty_choice_is_rejected(tmp_path, choices):
    probe = {"probe": "Color?", "answer": "blue", "choices": choices, "type": "recall"}
    rejected(write_unit(tmp_path, "u", n_docs=2, probes=[probe]), ":4:", "at least 2 non-empty strings")


@pytest.mark.parametrize("module, stopped, args", [
    ("units", "inspect_unit", ["u.jsonl"]),
    ("bpe", "load_tokenizer", ["corpus", "text"]),
    ("passport", "Passport.check", ["passport.jsonl"]),
    ("report", "read_report", ["render", "report.json"]),
])
def test_ctrl_c_ends_the_read_only_command_lines_in_one_line(module, stopped, args, tmp_path, capsys, monkeypatch):
    # a traceback ending in KeyboardInterrupt was what these printed
    import importlib
    from in_process import ctrl_c, run_main
    m = importlib.import_module(module)
    owner, _, name = stopped.rpartition(".")

    monkeypatch.setattr(getattr(m, owner) if owner else m, name, ctrl_c)
    (tmp_path / "passport.jsonl").write_text("")
    p = run_main(m.main, args, capsys, cwd=tmp_path)
    how = "run the same command again" if module == "report" else "it writes nothing; run it again"
    assert (p.returncode, p.stderr) == (130, f"interrupted: {how}\n")
