"""The default world generator (data/world/prepare.py): format, determinism, no leakage."""
import importlib.util
import json
import re
from collections import Counter, defaultdict
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
            assert 16_000 <= sum(map(len, docs)) <= 60_000, h["unit"]  # m=2: twice the m=1 unit


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
    # primitive text is left out: it names them only in neutral sentences (tested below)
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


def test_knowledge_names_occur_in_primitive_text_only_in_neutral_register_sentences(tiny):
    relations = {"color", "home", "food", "kind", "legs", "cover", "sound", "rule", "chain"}
    names = {c for h, _, _ in tiny[1].values() if h["kind"] == "knowledge" for c in h["concepts"]} - relations
    assert len(names) == 2 * (24 + 8 + 6)  # m=2: creatures, kinds, states
    neutral = [re.compile(re.escape(t).replace(re.escape("{e}"), r"(\w+)")) for t in world.NEUTRAL]
    seen = Counter()
    for d in _docs(tiny[1], "primitive"):
        for s in re.split(r"(?<=[.?!])\s+", d):
            found = names & set(re.findall(r"[a-z]+", s))
            if found:  # the base meets each name, and never a fact about it
                assert any(r.fullmatch(s) for r in neutral), s
                seen.update(found)
    assert set(seen) == names and min(seen.values()) == world.REGISTER_MENTIONS


def test_answers_are_spread_evenly_over_the_values_within_a_unit(tiny):
    """A model that learned only how often a unit uses each value must not beat chance."""
    for u, (h, _, probes) in tiny[1].items():
        by_pool = defaultdict(Counter)  # "names": states and kinds, which are no value pool
        for p in probes:
            if p["type"] == "recall":
                pool = next((rel for rel, vals in world.POOLS.items() if p["answer"] in vals), "names")
                by_pool[pool][p["answer"]] += 1
        assert by_pool or h["kind"] == "primitive"
        for pool, counts in by_pool.items():
            assert max(counts.values()) - min(counts.values()) <= 1, (u, pool, counts)


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


# ---------------------------------------------------------------- practice creatures (primitive units)

def _practice():
    plan = world._plan("tiny")
    per_unit, _ = world._practice_names(0, plan[4], plan[5])
    return {n for unit in per_unit for names in unit for n in names}


def _practice_docs(units):
    names = _practice()
    return [d for d in _docs(units, "primitive") if names & set(re.findall(r"[a-z]+", d))]


_WORD, _ART = r"[a-z]+", r"an? [a-z]+"
_TRIG = "|".join(re.escape(f) for t in world.TRIGGERS for f in t)
_SLOTS = {"e": _WORD, "k": _WORD, "v": _WORD, "st": _WORD, "noun": _WORD, "gerund": _WORD, "base": _WORD,
          "a_k": _ART, "a_st": _ART, "t3": _TRIG, "tbase": _TRIG, "tger": _TRIG,
          "s": r"the [a-z]+|an? [a-z]+ creature|an? [a-z]+", "S": None}


def _regex(template):
    """A template as a case-insensitive regex with a named group per field (S is s again)."""
    out, seen = "", set()
    for text, field in re.findall(r"([^{]*)(?:\{(\w+)\})?", template):
        out += re.escape(text)
        if field:
            name = "s" if field == "S" else field
            out += f"(?P={name})" if name in seen else f"(?P<{name}>{_SLOTS[name]})"
            seen.add(name)
    return re.compile(out, re.I)


_STATEMENTS = [(rel, _regex(t)) for rel, ts in world.KNOW.items() for t in ts]
_QUESTIONS = {rel: _regex(f"Q: {q} A: {lead}") for rel, (q, lead) in world.QUESTIONS.items()}
_BY_FORM = {f: key for table in (world.SOUNDS, world.ACTIONS) for key, forms in table.items() for f in forms}
_T3 = {f: t[0] for t in world.TRIGGERS for f in t}


def _bare(m, field):
    return m.groupdict().get(field) or m.group("a_" + field).split()[1]


def _statement_facts(docs):
    """Parse statement documents back into facts; every sentence is a template, filler or neutral."""
    facts, other = set(), []
    for s in (s for d in docs for s in re.split(r"(?<=\.)\s+", d)):
        hits = [(rel, m) for rel, rx in _STATEMENTS for m in [rx.fullmatch(s)] if m]
        for rel, m in hits:
            g = {k: v.lower() for k, v in m.groupdict().items()}
            if rel in ("color", "home", "food"):
                facts.add((rel, g["e"], g["v"]))
            elif rel == "kind":
                facts.add(("kind", g["e"], _bare(m, "k").lower()))
            elif rel in ("legs", "cover"):
                facts.add((rel, _bare(m, "k").lower(), g["v"]))
            elif rel == "sound":
                facts.add(("sound", _bare(m, "k").lower(), _BY_FORM[g.get("noun") or g["gerund"]]))
            elif rel == "rule":
                t = g.get("t3") or g.get("tbase") or g["tger"]
                facts.add(("rule", _bare(m, "k").lower(), _T3[t], g["v"]))
            else:
                facts.add(("act", _bare(m, "st").lower(), _BY_FORM[g.get("base") or g["gerund"]]))
        if not hits:
            other.append(s)
    return facts, other


def _parse_qa(line):
    """(relation, subject, trigger, answer) of one Q/A line, or None."""
    for rel, rx in _QUESTIONS.items():
        m = rx.match(line)
        a = m and re.fullmatch(r" ((?:an? )?\w+)" + world.TAIL.get(rel, "") + r"\.", line[m.end():])
        if a:
            return rel, m.group("s").lower(), m.groupdict().get("t3"), a.group(1)
    return None


def test_practice_names_are_disjoint_from_knowledge_names_and_world_words(tiny):
    practice = _practice()
    relations = {"color", "home", "food", "kind", "legs", "cover", "sound", "rule", "chain"}
    knowledge = {c for h, _, _ in tiny[1].values() if h["kind"] == "knowledge" for c in h["concepts"]}
    assert 150 <= len(practice) and not practice & (knowledge - relations) and not practice & world.RESERVED
    words = set(re.findall(r"[a-z]+", " ".join(_docs(tiny[1], "primitive"))))
    assert practice <= words  # every practice name is used
    assert not practice & set(re.findall(r"[a-z]+", " ".join(_docs(tiny[1], "knowledge")).lower()))


def test_practice_qa_documents_and_statement_documents_are_separate(tiny):
    docs = _practice_docs(tiny[1])
    qa = [d for d in docs if d.startswith("Q: ")]
    statements = [d for d in docs if not d.startswith("Q: ")]
    assert len(qa) >= 300 and len(statements) >= 1000
    for d in qa:  # only Q/A lines, each in a probe frame
        lines = re.split(r"(?<=\.) (?=Q: )", d)
        assert all(_parse_qa(line) for line in lines), d
    for d in statements:
        assert "Q:" not in d and "A:" not in d and "?" not in d, d
    _, other = _statement_facts(statements)  # knowledge templates, and else only filler and neutral
    neutral = [_regex(t) for t in world.NEUTRAL]
    for s in other:
        assert s in world.FILLER_FIXED or any(rx.fullmatch(s) for rx in neutral) or (
            any(x in s.lower() for x in world.FILLER_SUBJ) and any(v in s for v in world.FILLER_VERB)), s


def test_every_practice_fact_asked_is_stated_or_implied_by_statements(tiny):
    docs = _practice_docs(tiny[1])
    facts, _ = _statement_facts([d for d in docs if not d.startswith("Q: ")])
    kind_of = {}
    for f in facts:
        if f[0] == "kind":
            kind_of.setdefault(f[1], set()).add(f[2])
    asked = [_parse_qa(line) for d in docs if d.startswith("Q: ") for line in re.split(r"(?<=\.) (?=Q: )", d)]
    types = Counter()
    for rel, subj, t3, ans in asked:
        art, name = subj.split()[:2]
        creature = art == "the"
        if rel == "chain":
            assert any(("rule", k, t3, st) in facts and ("act", st, ans) in facts
                       for k in kind_of[name] for st in {f[3] for f in facts if f[:3] == ("rule", k, t3)})
        elif rel == "kind":
            assert ("kind", name, ans.split()[-1]) in facts, (subj, ans)
        elif rel == "act":
            assert ("act", name, ans) in facts
        elif creature and rel in ("legs", "cover", "sound", "rule"):  # inherited: one hop through its kind
            fact = (rel, None, t3, ans) if rel == "rule" else (rel, None, ans)
            assert any(fact[:1] + (k,) + fact[2:] in facts for k in kind_of[name]), (rel, subj, ans)
        else:
            assert ((rel, name, t3, ans) if rel == "rule" else (rel, name, ans)) in facts, (rel, subj, ans)
        types[rel, creature] += 1
    assert len(asked) >= 2000
    assert {("color", True), ("kind", True), ("legs", True), ("legs", False), ("rule", True),
            ("rule", False), ("act", False), ("chain", True)} <= set(types)
