"""The default world generator (data/world/prepare.py): format, determinism, no leakage."""
import importlib.util
import json
import re
from collections import Counter
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "world_prepare", Path(__file__).resolve().parents[1] / "data" / "world" / "prepare.py")
world = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(world)

HEADER_KEYS = {"unit", "kind", "level", "title", "concepts", "requires", "source", "license"}


def _read(path):
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return lines[0], [d["text"] for d in lines[1:] if "text" in d], [p for p in lines[1:] if "probe" in p]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("world")
    files = world.generate(out, seed=0)
    return files, {f.stem: _read(f) for f in files}


def _docs(units, kind=None):
    return [d for h, docs, _ in units.values() if kind in (None, h["kind"]) for d in docs]


def _probes(units):
    return [p for _, _, probes in units.values() for p in probes]


def _entity(prompt):
    return re.search(r"\bthe (\w+)", prompt, re.I).group(1)


def test_same_seed_writes_identical_bytes_and_another_seed_differs(tiny, tmp_path):
    files, _ = tiny
    again = world.generate(tmp_path / "a", seed=0)
    other = world.generate(tmp_path / "b", seed=1)
    assert [f.name for f in again] == [f.name for f in files]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(files, again))
    assert all(a.read_bytes() != b.read_bytes() for a, b in zip(files, other))


def test_tiny_has_three_primitive_units_and_six_knowledge_units(tiny):
    files, units = tiny
    assert [f.name for f in files] == [f"{u}.jsonl" for u in units]
    assert list(units) == ["prim-00", "prim-01", "prim-02", "atoms-00", "atoms-01", "atoms-02",
                           "kinds-00", "kinds-01", "rules-00"]
    prim = sum(len(d) for d in _docs(units, "primitive"))
    assert 600_000 <= prim <= 1_000_000
    for h, docs, _ in units.values():
        if h["kind"] == "knowledge":
            assert 8_000 <= sum(map(len, docs)) <= 30_000, h["unit"]


def test_every_unit_has_a_valid_header_and_four_choice_probes(tiny):
    for uid, (h, docs, probes) in tiny[1].items():
        assert set(h) == HEADER_KEYS and h["unit"] == uid
        assert h["source"] == "accrete data/world/prepare.py seed=0" and h["license"] == "CC0-1.0"
        assert docs and all(isinstance(d, str) and d for d in docs)
        if h["kind"] == "primitive":
            assert h["level"] == 0 and probes == []
            continue
        assert len(probes) >= 24
        for p in probes:
            assert set(p) == {"probe", "answer", "choices", "type"}
            assert len(p["choices"]) == 4 == len(set(p["choices"])) and p["answer"] in p["choices"]
            assert p["probe"].startswith("Q: ") and not p["probe"].endswith(" ")


def test_probe_types_per_level(tiny):
    types = {h["level"]: set() for h, _, _ in tiny[1].values()}
    for h, _, probes in tiny[1].values():
        types[h["level"]] |= {p["type"] for p in probes}
    assert types == {0: {"recall"}, 1: {"recall", "inference"}, 2: {"recall", "inference", "chain"}}


def test_no_probe_prompt_plus_answer_appears_in_any_document(tiny):
    text = "\n".join(_docs(tiny[1]))
    for p in _probes(tiny[1]):
        assert p["probe"] + " " + p["answer"] not in text
        assert p["probe"] + p["answer"] not in text


def test_recall_phrasing_is_never_used_in_knowledge_documents(tiny):
    text = "\n".join(_docs(tiny[1], "knowledge")).lower()
    assert "q:" not in text and "?" not in text
    for p in _probes(tiny[1]):
        question, lead = p["probe"][3:].split(" A: ")
        assert question.lower() not in text
        assert f"{lead} {p['answer']}".lower() not in text, p  # nor the answer sentence


def test_inference_answers_are_never_stated_about_their_entity(tiny):
    # primitive text is left out: it never contains an invented name (tested below)
    sentences = [set(re.findall(r"\w+", s))
                 for d in _docs(tiny[1], "knowledge") for s in re.split(r"(?<=[.?!])\s+", d)]
    checked = 0
    for p in _probes(tiny[1]):
        if p["type"] in ("inference", "chain"):
            e = _entity(p["probe"])
            about = [words for words in sentences if e in words]
            assert about, e  # the entity is known from documents...
            assert not any(p["answer"] in words for words in about), p  # ...its answer is not
            checked += 1
    assert checked >= 100


def test_each_fact_is_stated_in_at_least_four_phrasings(tiny):
    _, docs, probes = tiny[1]["atoms-00"]
    sentences = {s for d in docs for s in re.split(r"(?<=[.?!])\s+", d)}
    for p in probes:
        e, v = _entity(p["probe"]), p["answer"]
        said = {s for s in sentences if re.search(rf"\b{e}\b", s) and re.search(rf"\b{v}\b", s)}
        phrasings = {re.sub(rf"\b({e}|{v})\b", "_", s) for s in said}
        assert len(phrasings) >= 4, (e, v)


def test_invented_names_never_occur_in_primitive_text(tiny):
    words = set(re.findall(r"[a-z]+", " ".join(_docs(tiny[1], "primitive")).lower()))
    relations = {"color", "home", "food", "kind", "legs", "cover", "sound", "rule", "chain"}
    names = {c for h, _, _ in tiny[1].values() if h["kind"] == "knowledge" for c in h["concepts"]} - relations
    assert len(names) == 24 + 8 + 6 and not names & words


def test_requires_name_existing_units_of_lower_level(tiny):
    units = tiny[1]
    order = list(units)
    for uid, (h, _, _) in units.items():
        for r in h["requires"]:
            assert r in units and units[r][0]["level"] < h["level"] and order.index(r) < order.index(uid)
    assert units["kinds-00"][0]["requires"] == ["atoms-00", "atoms-01"]
    assert units["rules-00"][0]["requires"] == ["kinds-00", "kinds-01"]


def test_answer_position_varies_and_is_balanced(tiny):
    positions = Counter(p["choices"].index(p["answer"]) for p in _probes(tiny[1]))
    n = sum(positions.values())
    assert set(positions) == {0, 1, 2, 3}
    assert all(0.2 <= c / n <= 0.3 for c in positions.values()), positions


def test_target_tokens_writes_about_that_many(tmp_path):
    files = world.generate(tmp_path, target_tokens=200_000)
    tokens = sum(f.stat().st_size for f in files) / 4
    assert 0.9 * 200_000 <= tokens <= 1.1 * 200_000
    assert len([f for f in files if f.name.startswith("rules-")]) >= 2


def test_a_smaller_run_removes_stale_units(tmp_path):
    bigger = world.generate(tmp_path, target_tokens=120_000)
    files = world.generate(tmp_path, target_tokens=50_000)
    assert len(files) < len(bigger)
    assert sorted(tmp_path.glob("*.jsonl")) == sorted(files)


def test_cli_reports_bad_arguments(tmp_path, capsys):
    assert world.main(["--out", str(tmp_path), "--size", "huge"]) == 2
    assert "error: --size" in capsys.readouterr().err
