"""The default world generator (data/world/prepare.py): format, determinism, no leakage."""
import hashlib
import importlib.util
import itertools
import json
import math
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import regex

import bpe
import common
from in_process import ctrl_c

_spec = importlib.util.spec_from_file_location(
    "world_prepare", Path(__file__).resolve().parents[1] / "data" / "world" / "prepare.py")
world = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(world)

HEADER_KEYS = {"unit", "kind", "level", "title", "concepts", "requires", "source", "license"}


def _read(path):
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return lines[0], [d["text"] for d in lines[1:] if "text" in d], [p for p in lines[1:] if "probe" in p]


def _world(tmp_path_factory, cooccur_docs):
    """World seed 0 with these cooccur documents, as (files, {unit: (header, documents, probes)})."""
    files = world.generate(tmp_path_factory.mktemp(cooccur_docs), seed=0, cooccur_docs=cooccur_docs)
    return files, {f.stem: _read(f) for f in files}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return _world(tmp_path_factory, "plain")


@pytest.fixture(scope="module")
def decoys(tmp_path_factory):
    """The tiny world whose cooccur creatures' documents state a property of every kind of their group."""
    return _world(tmp_path_factory, "decoys")


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    """The tiny world whose cooccur creatures' memberships and their kinds' properties are documents apart."""
    return _world(tmp_path_factory, "split")


@pytest.fixture(scope="module", params=world.COOCCUR_DOCS)
def every_world(request):
    """The tiny world with each kind of cooccur documents: every property a test checks holds in all."""
    return request.getfixturevalue("tiny" if request.param == "plain" else request.param)


def _cooccur_docs_of(files):
    """What a world's cooccur documents state (world.COOCCUR_DOCS), as its knowledge units' source says."""
    source = json.loads(files[-1].read_text().splitlines()[0])["source"]
    return source.rsplit(" cooccur-", 1)[1] if " cooccur-" in source else "plain"


def _docs(units, kind=None):
    return [d for h, docs, _ in units.values() if kind in (None, h["kind"]) for d in docs]


def _probes(units):
    return [p for _, _, probes in units.values() for p in probes]


def _entity(prompt):
    """The creature a probe asks about ("the X"), or None (a kind's or a rule's probe)."""
    m = re.search(r"\bthe (\w+)", prompt, re.I)
    return m and m.group(1)


def _kind_of(units):
    """{creature: its kind}, as the units' membership probes answer it."""
    return {_entity(p["probe"]): p["answer"].split()[1] for p in _probes(units)
            if p["probe"].startswith("Q: What kind of creature")}


@pytest.mark.parametrize("variant", ["decoys", "split"])
def test_other_cooccur_documents_change_only_the_kinds_units(tiny, variant, request):
    """A world with other cooccur documents differs from the plain one in its kinds units alone (and
    in the knowledge units' source line): the primitive text, so the tokenizer and the base, and every
    other unit are the same, and so are the cooccur probes. A kinds unit holds out other properties of
    its members (what its cooccur creatures state is counted when the hold-outs even out the values),
    so its documents and its other probes differ, in the same numbers by type."""
    (plain_files, plain), (files, units) = tiny, request.getfixturevalue(variant)
    assert [f.name for f in files] == [f.name for f in plain_files]
    for (uid, (h, docs, probes)), f, g in zip(units.items(), files, plain_files):
        h0, docs0, probes0 = plain[uid]
        assert {**h, "source": h0["source"]} == h0
        assert h["source"].endswith(f"cooccur-{variant}") == (h["kind"] == "knowledge"), uid
        if h["kind"] == "primitive":
            assert f.read_bytes() == g.read_bytes()
        if not uid.startswith("kinds"):
            assert (docs, probes) == (docs0, probes0), uid
            continue
        assert docs != docs0 and Counter(p["type"] for p in probes) == Counter(p["type"] for p in probes0)
        cooccur = [{(p["probe"], p["answer"], frozenset(p["choices"])) for p in ps if p["type"] == "inference_cooccur"}
                   for ps in (probes, probes0)]
        assert cooccur[0] == cooccur[1] and len(cooccur[0]) == 54, uid


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
            assert 15_000 <= sum(map(len, docs)) <= 80_000, h["unit"]


def test_every_unit_has_a_valid_header_and_four_choice_probes(every_world):
    for uid, (h, docs, probes) in every_world[1].items():
        assert set(h) == HEADER_KEYS and h["unit"] == uid
        assert h["source"] in ["accrete data/world/prepare.py seed=0"] + [
            f"accrete data/world/prepare.py seed=0 cooccur-{c}" for c in ("decoys", "split")] and h["license"] == "CC0-1.0"
        assert docs and all(isinstance(d, str) and d for d in docs)
        if h["kind"] == "primitive":
            assert h["level"] == 0 and probes == []
            continue
        assert len(probes) >= 75
        for p in probes:
            assert {"probe", "answer", "choices", "type", "cluster"} <= set(p) <= {
                "probe", "answer", "choices", "type", "cluster", "premises"}
            assert len(p["choices"]) == 4 == len(set(p["choices"])) and p["answer"] in p["choices"]
            assert p["probe"].startswith("Q: ") and not p["probe"].endswith(" ")


def test_probe_types_per_level_and_at_least_100_of_each_reasoning_type(every_world):
    types = {h["level"]: set() for h, _, _ in every_world[1].values()}
    for h, _, probes in every_world[1].values():
        types[h["level"]] |= {p["type"] for p in probes}
    assert types == {0: {"recall"}, 1: {"recall", "inference_id", "inference_cooccur", "inference_ood"},
                     2: {"recall", "chain"}}
    counts = Counter(p["type"] for p in _probes(every_world[1]))
    assert min(counts.values()) >= 100, counts


def test_premises_are_recall_probes_of_the_corpus_and_clusters_name_the_entity(every_world):
    probes = _probes(every_world[1])
    recall = {p["probe"]: p for p in probes if p["type"] == "recall"}
    for p in probes:
        if p["type"] == "recall":
            assert "premises" not in p
            continue
        assert len(p["premises"]) == 2 and all(q in recall for q in p["premises"]), p
        assert p["cluster"] == _entity(p["probe"]) and _entity(p["premises"][0]) == p["cluster"]


def test_no_probe_prompt_plus_answer_appears_in_any_document(every_world):
    text = "\n".join(_docs(every_world[1]))
    for p in _probes(every_world[1]):
        assert p["probe"] + " " + p["answer"] not in text
        assert p["probe"] + p["answer"] not in text


def test_recall_phrasing_is_never_used_in_knowledge_documents(every_world):
    text = "\n".join(_docs(every_world[1], "knowledge")).lower()
    assert "q:" not in text and "?" not in text
    for p in _probes(every_world[1]):
        question, lead = p["probe"][3:].split(" A: ")
        assert question.lower() not in text
        assert f"{lead} {p['answer']}".lower() not in text, p  # nor the answer sentence


def _forms(answer):
    """Every word form a statement may give an answer in (hums: hum, humming)."""
    return {answer, *world.SOUNDS.get(answer, ()), *world.ACTIONS.get(answer, ())}


def _sentences(docs):
    return [s for d in docs for s in re.split(r"(?<=[.?!])\s+", d)]


def _said_about(sentences, e, answer):
    return [s for s in sentences if e in re.findall(r"\w+", s) and _forms(answer) & set(re.findall(r"\w+", s))]


def test_inferred_answers_are_never_stated_about_their_entity(every_world):
    # primitive text is left out: it names them only in neutral sentences (tested below)
    naming = defaultdict(list)  # word -> the sentences that use it
    for s in _sentences(_docs(every_world[1], "knowledge")):
        for w in set(re.findall(r"\w+", s)):
            naming[w].append(s)
    checked = Counter()
    for p in _probes(every_world[1]):
        if p["type"] != "recall":
            e = _entity(p["probe"])
            assert naming[e], e  # the entity is known from documents...
            assert not _said_about(naming[e], e, p["answer"]), p  # ...its answer is not
            checked[p["type"]] += 1
    assert min(checked.values()) >= 100 and len(checked) == 4


def test_the_leakage_screen_finds_no_derived_fact_stated_in_any_unit_primitive_text_included(every_world):
    import leakage
    files = every_world[0]
    assert sum(len(v) for f in files for v in leakage.derived_facts(f).values()) >= 400  # it has probes to look for
    leakage.stated_in(files, files)


def test_in_distribution_probes_have_the_entity_s_other_inferred_facts_stated(every_world):
    sentences = _sentences(_docs(every_world[1], "knowledge"))
    by_entity = defaultdict(list)
    for p in _probes(every_world[1]):
        if p["type"] in ("inference_id", "chain"):
            by_entity[p["type"], _entity(p["probe"])].append(p)
    for (kind, e), probes in by_entity.items():
        assert len(probes) == 1  # one held out per entity and type
        stated = [s for s in sentences if e in re.findall(r"\w+", s)]
        held = probes[0]["answer"]
        pool = world.PROPS if kind == "inference_id" else world.OUTCOMES
        others = [v for v in _values_of(every_world, e, kind) if v != held]
        assert len(others) == len(pool) - 1
        for v in others:
            assert _said_about(stated, e, v), (e, v)


def _values_of(tiny, e, kind):
    """An entity's values in one family (its kind's properties, or its rule outcomes), read from
    the recall probes' answers and the knowledge rulebook."""
    units = tiny[1]
    if kind == "inference_id":
        k = next(p["answer"].split()[1] for p in _probes(units) if p["type"] == "recall"
                 and p["probe"] == f"Q: What kind of creature is the {e}? A: The {e} is")
        return [p["answer"] for p in _probes(units) if p["type"] == "recall" and _entity_or_kind(p) == k
                and p["answer"] in sum((world.POOLS[r] for r in world.PROPS), [])]
    vals = {p["answer"] for p in _probes(units) if p["type"] == "recall" and _entity(p["probe"]) == e
            and p["answer"] in sum((v["knowledge"] for v in world.HALVES.values()), [])}
    rules = world.rulebook(0, "knowledge")
    return [v for o in world.OUTCOMES for key, v in rules[o].items() if key in vals]


def _entity_or_kind(p):
    m = re.search(r"\b(?:the|an?) (\w+)", p["probe"][3:])
    return m.group(1)


def test_cooccur_premises_always_share_a_document_and_ood_premises_never_share_a_unit(tiny):
    units = tiny[1]
    kind_of = _kind_of(units)
    checked = Counter()
    for p in _probes(units):
        if p["type"] not in ("inference_cooccur", "inference_ood"):
            continue
        e, k = _entity(p["probe"]), kind_of[_entity(p["probe"])]
        holding = [(u, d) for u, (h, docs, _) in units.items() if h["kind"] == "knowledge"
                   for d in docs if e in re.findall(r"\w+", d)]
        assert holding
        for u, d in holding:
            premise = bool(_said_about(_sentences([d]), k, p["answer"]))  # the kind's property in that document
            if p["type"] == "inference_cooccur":
                assert premise, (e, d)
            else:
                assert not any(_said_about(_sentences(units[u][1]), k, p["answer"])), (e, u)
        checked[p["type"]] += 1
    assert checked["inference_cooccur"] >= 100 and checked["inference_ood"] >= 100


def _train_tokens(uid, docs):
    """A unit's training stream as the corpus shards it, in pre-tokens (bpe.SPLIT_PATTERN's pieces, which
    a BPE never merges, so no fewer than its tokens): [(the sentence's words, its first pre-token, its
    last + 1)] and the stream's length; the held-out documents dropped, one token after each document."""
    out, n = [], 0
    for doc, held in zip(docs, common.val_mask(uid, len(docs))):
        for i, s in enumerate([] if held else _sentences([doc])):
            out.append((set(re.findall(r"\w+", s)), n, n + len(regex.findall(bpe.SPLIT_PATTERN, " " * (i > 0) + s))))
            n = out[-1][2]
        n += not held
    return out, n


def _closest_ood_premises(units):
    """Over every inference_ood probe and every atoms unit and kinds unit that could meet in a pool
    (either first; a window reads on across a unit's end into the next unit), the fewest tokens a
    window reads to hold a token of a statement of the creature's membership and one of a statement
    of its kind's property."""
    kind_of, spans = _kind_of(units), []
    streams = {u: _train_tokens(u, units[u][1]) for u in units if u.startswith(("atoms", "kinds"))}
    for p in (p for p in _probes(units) if p["type"] == "inference_ood"):
        e, forms = _entity(p["probe"]), _forms(p["answer"])
        for (a, (sa, na)), (k, (sk, nk)) in itertools.product(streams.items(), repeat=2):
            mem = [(i, j) for words, i, j in sa if e in words] if a.startswith("atoms") else []
            prop = [(i, j) for words, i, j in sk if kind_of[e] in words and forms & words] if k.startswith("kinds") else []
            if mem and prop:  # from the last token of one through the first of the other, either unit first
                spans.append(min(min(na - j + 1 for _, j in mem) + min(i + 1 for i, _ in prop),
                                 min(nk - j + 1 for _, j in prop) + min(i + 1 for i, _ in mem)))
    return spans


@pytest.mark.parametrize("seed,window,docs", [(1, world.WINDOW, "plain"), (6, world.WINDOW, "plain"),
                                              (17, world.WINDOW, "plain"), (24, world.WINDOW, "plain"),
                                              (0, world.WINDOW, "decoys"), (0, world.WINDOW, "split"),
                                              (2, 600, "plain")])
def test_no_training_window_holds_both_premises_of_an_ood_probe(tmp_path, seed, window, docs):
    """inference_ood's premises never share a context window: an ood creature's membership (an atoms
    unit) and its kind's properties (a kinds unit) lie more than a window apart wherever a pool joins
    the two units, in worlds where they would otherwise fall within one (each of these)."""
    units = {f.stem: _read(f) for f in world.generate(tmp_path, seed=seed, window=window, cooccur_docs=docs)}
    spans = _closest_ood_premises(units)
    assert len(spans) >= 100 and min(spans) > window, min(spans)


def test_moving_documents_keeps_each_unit_s_documents_its_held_out_ones_and_its_probes(tmp_path):
    """Only the order of a kinds unit's documents changes (world seed 1 needs moves): the same documents,
    the same ones held out (common.val_mask goes by position), the same probes; every other unit as is."""
    moved = {f.stem: _read(f) for f in world.generate(tmp_path / "moved", seed=1)}
    unmoved = {f.stem: _read(f) for f in world.generate(tmp_path / "unmoved", seed=1, window=1)}
    changed = [u for u in moved if moved[u][1:] != unmoved[u][1:]]
    assert changed and all(u.startswith("kinds") for u in changed), changed
    for u in changed:
        held = lambda docs: sorted(d for d, h in zip(docs, common.val_mask(u, len(docs))) if h)
        (_, docs, probes), (_, before, probes_before) = moved[u], unmoved[u]
        assert sorted(docs) == sorted(before) and held(docs) == held(before) and probes == probes_before


def test_a_document_moved_to_the_last_place_it_may_take_stays_there():
    """The move stops as soon as the premises lie apart, even in the last place a stating document may
    trade for (the only train document stating no property)."""
    f = {"kinds": {"florp": {"legs": "six", "cover": "fur", "sound": "hums"},
                   "zorb": {"legs": "two", "cover": "scales", "sound": "clicks"}}, "kind_of": {"dax": "florp"}}
    train = [i for i, held in enumerate(common.val_mask("kinds-00", 12)) if not held]
    docs = ["Each zorb walks on two legs."] * 12  # another kind's property: no place to trade with
    docs[train[0]], docs[train[-1]] = "Each florp walks on six legs.", "The sun is warm in summer."
    # the atoms unit ends one word after the membership: the first florp statement must move from the start
    world._keep_ood_apart(f, "kinds-00", docs, {"dax": (1000, 1, 0, 0)}, window=10)
    assert docs[train[0]] == "The sun is warm in summer." and docs[train[-1]] == "Each florp walks on six legs."
    with pytest.raises(world.WindowError, match="^kinds-00: too small"):
        world._keep_ood_apart(f, "kinds-00", docs, {"dax": (1000, 1, 0, 0)}, window=1000)


def test_the_default_world_is_the_one_every_recorded_result_was_measured_on(tiny, tmp_path):
    """World seed 0, byte for byte: each unit's sha256 as the passports of RESULTS.md's runs hold it (their
    unit_added events). Its ood premises lay apart before any document had to move."""
    recorded = {"prim-00": "87228fec44eed57ac36cc6a02a68dc4761d615b606f02e676aab58e4856cc80e",
                "prim-01": "c0aee98f11a271c1491add5b5dd5f8ec13f157d6e7e70143c38aa7695255edcf",
                "prim-02": "5fd362ee41630134d96e30b068210ac1b7b7b1014dd69c36a5dc18632674dbf9",
                "atoms-00": "32b3b9bca8ea06daf4eef19b6f345d37d0e240ea326e5af6f9206d594ff3487f",
                "atoms-01": "dd0c4af0688fb98ecb03d9d50c215781805707f1a329b1e5516c2a871f7e2221",
                "atoms-02": "7ec82e56ccde9987d49f385997b27026d75fa77d09c5336ca3d899181567339e",
                "kinds-00": "eded8c730a1453af833b718715a9c2aaa82eae071c965933c0c1fb581ac89da8",
                "kinds-01": "b3e3dd9f198044cec7b10dc84cdc3331e7817862e7676b4e45c76c3f111e1982",
                "rules-00": "7788af34bdbdff6c9df267d024334b474f764fd86cfe892444e1d2cfb1e28412"}
    assert {f.stem: hashlib.sha256(f.read_bytes()).hexdigest() for f in tiny[0]} == recorded
    files = world.generate(tmp_path, seed=0, window=1)  # a window of one token holds no pair
    assert [_read(f)[1:] for f in files] == [_read(f)[1:] for f in tiny[0]]  # documents and probes
    assert min(_closest_ood_premises(tiny[1])) > world.WINDOW


def test_cooccur_choices_are_stated_with_their_creature_as_its_documents_say(every_world):
    """Association (evaluate.association) picks the choice most mentioned in the documents naming a
    probe's creature. Plain, those documents state its kind's properties alone, so it names the
    answer; with decoys each choice is stated with the creature as often, and both premises of every
    probe still share MENTIONS documents, each short (the membership and one property of each kind of
    the group); split, they are MENTIONS statements of its membership, naming no choice."""
    files, units = every_world
    docs = _cooccur_docs_of(files)
    kind_of = _kind_of(units)
    cooccur = [p for p in _probes(units) if p["type"] == "inference_cooccur"]
    creatures, naming = {_entity(p["probe"]) for p in cooccur}, defaultdict(list)
    for d in _docs(units, "knowledge"):
        for e in set(re.findall(r"\w+", d)) & creatures:
            naming[e].append(d)
    answer_leads = 0
    for p in cooccur:
        e, k = _entity(p["probe"]), kind_of[_entity(p["probe"])]
        text = " ".join(naming[e])
        counts = [len(re.findall(rf"\b({'|'.join(_forms(c.split()[-1]))})\b", text)) for c in p["choices"]]
        answer = p["choices"].index(p["answer"])
        answer_leads += counts[answer] > max(counts[:answer] + counts[answer + 1:])
        if docs == "decoys":
            assert len(set(counts)) == 1 and counts[0] == len(naming[e]) // len(world.PROPS), (p["probe"], counts)
            both = [d for d in naming[e] if _said_about(_sentences([d]), k, p["answer"])]
            assert len(both) == world.MENTIONS, (p["probe"], len(both))
            assert all(len(_sentences([d])) == 1 + world.GROUP_KINDS for d in naming[e])
        if docs == "split":
            assert counts == [0] * 4 and len(naming[e]) == world.MENTIONS, (p["probe"], counts, len(naming[e]))
            assert all(len(_sentences([d])) == 1 and k in d for d in naming[e]), naming[e]
    assert len(cooccur) >= 100 and answer_leads == (len(cooccur) if docs == "plain" else 0), answer_leads


def test_a_split_world_states_each_premise_as_often_as_the_plain_one(tiny, split):
    """Split takes the plain cooccur documents apart and nothing else: each reasoning probe's premise
    about its kind (the property) is stated, in documents naming no creature, exactly as often as in
    the plain world (that no document naming a cooccur creature states one: the test above)."""
    kind_of = _kind_of(tiny[1])
    counted = []
    for _, units in (tiny, split):
        counts = {}
        for u, (h, docs, probes) in units.items():
            sentences = _sentences(docs)
            for p in probes:
                if p["type"] in ("inference_cooccur", "inference_ood"):
                    k = kind_of[_entity(p["probe"])]
                    counts[p["probe"]] = sum(1 for s in _said_about(sentences, k, p["answer"])
                                             if not set(re.findall(r"\w+", s)) & set(kind_of))
        counted.append(counts)
    assert len(counted[0]) >= 200 and counted[0] == counted[1]
    assert min(counted[0].values()) >= world.MENTIONS


def test_each_fact_is_stated_in_at_least_four_phrasings(tiny):
    _, docs, probes = tiny[1]["atoms-00"]
    sentences = {s for d in docs for s in re.split(r"(?<=[.?!])\s+", d)}
    for p in probes:
        e, v = _entity(p["probe"]), p["answer"].split()[-1]
        said = {s for s in sentences if re.search(rf"\b{e}\b", s) and re.search(rf"\b{v}\b", s)}
        phrasings = {re.sub(rf"\b({e}|{v})\b", "_", s) for s in said}
        assert len(phrasings) >= 4, (e, v)


RELATIONS = {"color", "home", "food", "kind", "legs", "cover", "sound", "night", "mood", "smell"}


def test_knowledge_names_occur_in_primitive_text_only_in_neutral_register_sentences(tiny):
    names = {c for h, _, _ in tiny[1].values() if h["kind"] == "knowledge" for c in h["concepts"]} - RELATIONS
    assert len(names) == 5 * 36 + 8  # m=3: creatures of three kinds of statement, and kinds
    neutral = [re.compile(re.escape(t).replace(re.escape("{e}"), r"(\w+)")) for t in world.NEUTRAL]
    seen = Counter()
    for d in _docs(tiny[1], "primitive"):
        for s in re.split(r"(?<=[.?!])\s+", d):
            found = names & set(re.findall(r"[a-z]+", s))
            if found:  # the base meets each name, and never a fact about it
                assert any(r.fullmatch(s) for r in neutral), s
                seen.update(found)
    assert set(seen) == names and min(seen.values()) == world.REGISTER_MENTIONS


def test_answers_are_spread_evenly_over_the_values_within_a_unit(every_world):
    """A model that learned only how often a unit uses each value must not beat chance."""
    pools = {**world.POOLS, **{a: v["knowledge"] for a, v in world.HALVES.items()}}
    for u, (h, _, probes) in every_world[1].items():
        by_pool = defaultdict(Counter)
        for p in probes:
            # a creature's stated property or outcome follows its kind or its level-0 value, whose
            # own probes are spread: only those are checked
            derived = _entity(p["probe"]) and p["answer"] not in sum((v["knowledge"] for v in world.HALVES.values()), [])
            if p["type"] == "recall" and not derived:
                pool = next((rel for rel, vals in pools.items() if p["answer"] in vals), None)
                if pool:  # kinds' names are no value pool
                    by_pool[pool][p["answer"]] += 1
        assert by_pool or h["kind"] == "primitive"
        for pool, counts in by_pool.items():
            assert max(counts.values()) - min(counts.values()) <= 1, (u, pool, counts)


def test_reasoning_answers_are_spread_over_the_values_within_a_unit(every_world):
    """The check above sees, in a kinds or rules unit, only pools where each value is one kind's or rule's
    by construction; the answers that matter there are the reasoning probes'. Over world seeds 0-9 no
    value is the answer of more than 2 (chain: 4) probes of a type beyond another (4-5 a value at seed
    0, chain 10-12), where a unit whose creatures crowded into one kind would give that kind's values
    several times more."""
    checked = Counter()
    for u, (h, _, probes) in every_world[1].items():
        by_type = defaultdict(Counter)
        for p in probes:
            if p["type"] != "recall":
                by_type[p["type"]][p["answer"]] += 1
        for t, counts in by_type.items():
            assert max(counts.values()) - min(counts.values()) <= (4 if t == "chain" else 2), (u, t, counts)
            checked[t] += len(counts)
    assert checked == {"inference_id": 24, "inference_cooccur": 24, "inference_ood": 24, "chain": 10}, checked


def test_every_choice_of_a_reasoning_probe_is_stated_equally_often_in_its_unit(every_world):
    """A held-out fact is a statement the text lacks: unless the unit makes up for it, a reasoning
    probe's answer is the choice its unit states least, and picking that beats chance."""
    checked = Counter()
    for u, (h, docs, probes) in every_world[1].items():
        text = " ".join(docs)
        for fixed in world.FILLER_FIXED:  # "Rain makes the ground soft.": no statement of a value
            text = text.replace(fixed, "")
        for p in probes:
            if p["type"] != "recall":
                n = [len(re.findall(rf"\b({'|'.join(_forms(c.split()[-1]))})\b", text)) for c in p["choices"]]
                assert len(set(n)) == 1, (u, p["probe"], p["choices"], n)
                checked[p["type"]] += 1
    assert min(checked.values()) >= 100 and len(checked) == 4, checked


def test_held_out_facts_are_spread_evenly_over_the_relations(every_world):
    for u, (h, _, probes) in every_world[1].items():
        held = Counter(_relation(p["probe"]) for p in probes if p["type"] in ("inference_id", "chain"))
        assert not held or max(held.values()) - min(held.values()) <= 1, (u, held)
        assert len(held) == {"kinds": 3, "rules": 2}.get(u.split("-")[0], 0), (u, held)


def _relation(prompt):
    return next(r for r, (q, _) in world.QUESTIONS.items() if re.fullmatch(
        re.escape(q).replace(re.escape("{s}"), ".+"), prompt[3:prompt.index(" A: ")]))


def test_every_reasoning_answer_is_asked_and_answered_in_primitive_text(every_world):
    """The practice kinds take every value between them: a base that never answered with a word
    gives it a low prior, whatever an adapter teaches."""
    qa = " ".join(d for h, docs, _ in every_world[1].values() if h["kind"] == "primitive" for d in docs)
    answered = set(re.findall(r"A: [^.]*?(\w+)(?: legs)?\.", qa))
    reasoning = {p["answer"] for p in _probes(every_world[1]) if p["type"] != "recall"}
    assert len(reasoning) >= 15 and reasoning <= answered, reasoning - answered


def test_each_atoms_unit_names_every_kind_it_asks_a_membership_of(tmp_path):
    # seed 5 is a world where splitting a group's ood creatures by position left a kind unnamed
    for f in world.generate(tmp_path, seed=5):
        h, docs, probes = _read(f)
        words = set(re.findall(r"\w+", " ".join(docs)))
        for p in probes:
            assert all(c.split()[-1] in words for c in p["choices"]), (h["unit"], p["probe"], p["choices"])


def test_knowledge_and_primitive_level_0_values_are_disjoint_and_each_rule_keyed_on_its_side(tiny):
    for rel, halves in world.HALVES.items():
        assert not set(halves["knowledge"]) & set(halves["primitive"]) and len(halves["knowledge"]) == 5
    for side in ("knowledge", "primitive"):
        book = world.rulebook(0, side)
        for o, rule in book.items():
            assert sorted(rule) == sorted(world.HALVES[world.RULE_KEY[o]][side])
            assert len(set(rule.values())) == 5  # distinct outcomes: four choices from five


def test_requires_name_existing_units_of_lower_level(tiny):
    units = tiny[1]
    order = list(units)
    for uid, (h, _, _) in units.items():
        for r in h["requires"]:
            assert r in units and units[r][0]["level"] < h["level"] and order.index(r) < order.index(uid)
    assert units["kinds-00"][0]["requires"] == ["atoms-00", "atoms-01"]
    assert units["kinds-01"][0]["requires"] == ["atoms-01", "atoms-02"]
    assert units["rules-00"][0]["requires"] == ["atoms-00", "atoms-01", "atoms-02"]  # rules apply to level-0 facts


def test_every_choice_is_a_value_its_unit_names(every_world):
    # a distractor the unit never names would lose to the answer on word counts alone: a model that
    # learned only which words the unit uses would beat chance
    _, units = every_world
    for header, docs, probes in units.values():
        if header["kind"] != "knowledge":
            continue
        words = set(re.findall(r"[a-z]+", " ".join(docs).lower()))
        for p in probes:
            for c in p["choices"]:
                assert c.split()[-1].lower() in words, (header["unit"], p["probe"], c)


@pytest.fixture(scope="module")
def m1(tmp_path_factory):
    """A world of m = 1 (four blocks): a kind group has the fewest ood creatures, 8."""
    assert world._plan(target_tokens=250_000)[:2] == (4, 1)
    out = tmp_path_factory.mktemp("m1")
    files = world.generate(out, target_tokens=250_000)
    return files, {f.stem: _read(f) for f in files}


@pytest.mark.parametrize("which", ["tiny", "m1"])
def test_every_choice_of_every_probe_is_named_in_its_unit_s_documents(which, request):
    # a choice its unit never names loses to the answer on word counts alone (chance 1/3, not 1/4).
    # At m = 1 a group once had 6 ood creatures over 4 kinds (2, 2, 1, 1): a kind with one was named
    # in only one of the two atoms units that state the group's ood memberships
    units = request.getfixturevalue(which)[1]
    checked = Counter()
    for u, (h, docs, probes) in units.items():
        words = Counter(re.findall(r"\w+", " ".join(docs).lower()))
        for p in probes:
            n = [sum(words[w] for w in _forms(c.split()[-1].lower())) for c in p["choices"]]
            assert 0 not in n, (u, p["probe"], p["choices"], n)
            if which == "m1" and u.startswith("atoms") and p["probe"].startswith("Q: What kind"):
                assert len(set(n)) == 1, (u, p["probe"], p["choices"], n)  # one member of each kind a unit
                checked["atoms kind"] += 1
            checked[p["type"]] += 1
    assert min(checked.values()) >= 36 and len(checked) == 5 + (which == "m1"), checked


def test_answer_position_varies_and_is_balanced(every_world):
    positions = Counter(p["choices"].index(p["answer"]) for p in _probes(every_world[1]))
    n = sum(positions.values())
    assert set(positions) == {0, 1, 2, 3}
    assert all(0.2 <= c / n <= 0.3 for c in positions.values()), positions


@pytest.mark.parametrize("target", [200_000, 1_000_000, 3_000_000])
def test_target_tokens_writes_about_that_many_in_whole_blocks(tmp_path, target):
    files = world.generate(tmp_path, target_tokens=target)
    size = {f.stem: f.stat().st_size for f in files}
    tokens = sum(size.values()) / 4  # the generator's measure: file chars / 4
    assert 0.9 * target <= tokens <= 1.1 * target
    blocks = world._plan(target_tokens=target)[0]
    assert Counter(u.split("-")[0] for u in size) == {"prim": 3, "atoms": 3 * blocks, "kinds": 2 * blocks,
                                                      "rules": blocks}
    prim = sum(n for u, n in size.items() if u.startswith("prim")) / sum(size.values())
    assert prim <= 0.2 if target < 500_000 else 0.08 <= prim <= 0.12  # small worlds: practice's floor


@pytest.fixture(scope="module")
def smallest(tmp_path_factory):
    """The world of the least --target-tokens."""
    out = tmp_path_factory.mktemp("smallest")
    files = world.generate(out, target_tokens=world.MIN_TARGET_TOKENS)
    return files, {f.stem: _read(f) for f in files}


def test_the_smallest_target_world_is_one_whole_block_with_every_probe_type(smallest):
    files, units = smallest
    assert list(units) == ["prim-00", "prim-01", "prim-02", "atoms-00", "atoms-01", "atoms-02",
                           "kinds-00", "kinds-01", "rules-00"]
    types = Counter(p["type"] for p in _probes(units))
    assert set(types) == {"recall", "inference_id", "inference_cooccur", "inference_ood", "chain"}, types
    # an atoms unit states the memberships of ood creatures: each one's kind is described, and asked
    stated = {_entity(p["probe"]) for u, (_, _, probes) in units.items() if u.startswith("atoms")
              for p in probes if p["probe"].startswith("Q: What kind of creature")}
    assert stated and stated == {_entity(p["probe"]) for p in _probes(units) if p["type"] == "inference_ood"}
    tokens = sum(f.stat().st_size for f in files) / 4
    assert tokens < 2 * world.MIN_TARGET_TOKENS  # one block and the least primitive text (README)


def test_premises_of_the_smallest_world_are_its_own_recall_probes(smallest):
    test_premises_are_recall_probes_of_the_corpus_and_clusters_name_the_entity(smallest)


def test_the_register_names_exactly_the_knowledge_names_written(smallest):
    # a name of a block never written, mentioned in primitive text, would be a name no unit teaches
    units = smallest[1]
    plan = world._plan(target_tokens=world.MIN_TARGET_TOKENS)
    names = {c for h, _, _ in units.values() if h["kind"] == "knowledge" for c in h["concepts"]} - RELATIONS
    neutral = [_regex(t) for t in world.NEUTRAL]
    mentioned = {m.group("e").lower() for d in _docs(units, "primitive") for s in re.split(r"(?<=[.?!])\s+", d)
                 for rx in neutral for m in [rx.fullmatch(s)] if m}
    assert mentioned - _practice(plan) == names


def test_a_smaller_run_removes_stale_units(tmp_path):
    bigger = world.generate(tmp_path, target_tokens=120_000)
    files = world.generate(tmp_path, target_tokens=50_000)
    assert len(files) < len(bigger)
    assert sorted(tmp_path.glob("*.jsonl")) == sorted(files)


def test_cli_reports_bad_arguments(tmp_path, capsys, monkeypatch):
    with pytest.raises(SystemExit) as e:
        world.main(["--out", str(tmp_path), "--size", "huge"])
    assert e.value.code == 2 and "--size: invalid choice: 'huge'" in capsys.readouterr().err
    assert world.main(["--out", str(tmp_path), "--target-tokens", "10"]) == 2
    assert "error: --target-tokens 10: use at least 50000" in capsys.readouterr().err
    assert world.main(["--out", str(tmp_path / "w"), "--window", "0"]) == 2
    assert "error: window 0: give a whole number of tokens, at least 1\n" == capsys.readouterr().err
    # a window longer than the units can keep apart is refused with nothing written
    assert world.main(["--out", str(tmp_path / "w"), "--window", "8000"]) == 2
    assert capsys.readouterr().err == ("error: kinds-00: too small to keep its kinds' properties a window (8000 "
                                       "tokens) from their ood creatures' memberships; give a shorter --window or a "
                                       "larger world\n")
    assert not (tmp_path / "w").exists()
    # a world refused in a later block: the units written before it stay out of --out
    (tmp_path / "w" / ".units.tmp-999999999").mkdir(parents=True)  # a killed generation's, removed by the next
    (tmp_path / "w" / "notes.txt").write_text("mine")
    keep = world._keep_ood_apart
    def refuse_kinds_03(f, uid, *args):
        if uid == "kinds-03":
            raise world.WindowError(uid, 9)
        keep(f, uid, *args)
    monkeypatch.setattr(world, "_keep_ood_apart", refuse_kinds_03)
    assert world.main(["--out", str(tmp_path / "w"), "--target-tokens", "250000"]) == 2
    assert "error: kinds-03: too small" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "w").iterdir()] == ["notes.txt"]


# ---------------------------------------------------------------- practice creatures (primitive units)

def _practice(plan=None):
    """The practice names of a plan (the tiny world's by default)."""
    *_, n_prim, n_practice = plan or world._plan("tiny")
    groups, _ = world._practice(0, n_prim, n_practice, world.rulebook(0, "primitive"))
    return {n for f in groups for n in [*f["atoms"], *f["kinds"], *f["cooccur"], *f["ood"]]}


def _practice_docs(units):
    names = _practice()
    return [d for d in _docs(units, "primitive") if names & set(re.findall(r"[a-z]+", d))]


_WORD, _ART = r"[a-z]+", r"an? [a-z]+"
_SUBJECT = r"the [a-z]+|an? [a-z]+ creature|a creature that (?:lives in the|eats) [a-z]+|an? [a-z]+"
_SLOTS = {"e": _WORD, "k": _WORD, "v": _WORD, "noun": _WORD, "gerund": _WORD, "base": _WORD, "a_k": _ART,
          "s": _SUBJECT, "S": None}


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


_STATEMENTS = [(rel, _regex(t)) for table in (world.KNOW, world.ABOUT) for rel, ts in table.items() for t in ts]
_QUESTIONS = {rel: _regex(f"Q: {q} A: {lead}") for rel, (q, lead) in world.QUESTIONS.items()}
_BY_FORM = {f: key for table in (world.SOUNDS, world.ACTIONS) for key, forms in table.items() for f in (key, *forms)}


def _statement_facts(docs):
    """Parse statement documents back into facts (relation, subject, value): the subject is a
    creature, a kind, or a rule's key value; every other sentence is filler or neutral."""
    facts, other = set(), []
    for s in (s for d in docs for s in re.split(r"(?<=\.)\s+", d)):
        hits = [(rel, m) for rel, rx in _STATEMENTS for m in [rx.fullmatch(s)] if m]
        for rel, m in hits:
            g = {k: (v or "").lower() for k, v in m.groupdict().items()}
            subject = g.get("e") or g.get("k") or g["a_k"].split()[-1]
            if rel == "kind":
                facts.add(("kind", g["e"], g.get("k") or g["a_k"].split()[-1]))
            elif rel in ("sound", "night"):
                facts.add((rel, subject, _BY_FORM[g.get("v") or g.get("noun") or g.get("gerund") or g["base"]]))
            else:
                facts.add((rel, subject, g["v"]))
        if not hits:
            other.append(s)
    return facts, other


def _parse_qa(line):
    """(relation, subject, answer) of one Q/A line, or None."""
    for rel, rx in _QUESTIONS.items():
        m = rx.match(line)
        a = m and re.fullmatch(r" ((?:an? )?\w+)" + world.TAIL.get(rel, "") + r"\.", line[m.end():])
        if a:
            return rel, m.group("s").lower(), a.group(1)
    return None


def test_practice_names_are_disjoint_from_knowledge_names_and_world_words(tiny):
    practice = _practice()
    knowledge = {c for h, _, _ in tiny[1].values() if h["kind"] == "knowledge" for c in h["concepts"]}
    assert 150 <= len(practice) and not practice & (knowledge - RELATIONS) and not practice & world.RESERVED
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
    kind_of, value_of = defaultdict(set), defaultdict(set)
    for rel, subject, v in facts:
        (kind_of[subject] if rel == "kind" else value_of[rel, subject]).add(v)
    asked = [_parse_qa(line) for d in docs if d.startswith("Q: ") for line in re.split(r"(?<=\.) (?=Q: )", d)]
    how = Counter()
    for rel, subject, answer in asked:
        name, answer = subject.split()[-1], answer.split()[-1]
        if (rel, name, answer) in facts or (rel == "kind" and answer in kind_of[name]):
            how["stated"] += 1
        elif rel in world.PROPS and any((rel, k, answer) in facts for k in kind_of[name]):
            how["through its kind"] += 1
        else:  # a rule's outcome: through the creature's level-0 value and the rule keyed on it
            key_rel = world.RULE_KEY[rel]
            assert any((rel, key, answer) in facts for key in value_of[key_rel, name]), (rel, subject, answer)
            how["through a rule"] += 1
    assert len(asked) >= 1200 and min(how.values()) >= 50, how


def test_ctrl_c_ends_in_one_line_saying_how_to_go_on(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(world, "generate", ctrl_c)
    with pytest.raises(SystemExit) as e:
        world.main(["--out", str(tmp_path)])
    assert e.value.code == 130
    assert capsys.readouterr().err == ("interrupted: run the same command again: each unit file is written whole, "
                                       "and all of them anew\n")


def test_the_readme_s_stages_by_hand_take_the_default_ladder_s_steps(tiny, tmp_path):
    """README's by-hand block trains the base and atoms-00's adapter for the steps `python ladder.py` does."""
    import sys
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root))
    import curriculum
    import ladder
    from presets import PRESETS
    files, _ = tiny
    curriculum.init(tmp_path / "corpus", files, vocab_size=2048)
    curriculum.add(tmp_path / "corpus", files, log=lambda m: None)
    c, s = curriculum.Corpus(tmp_path / "corpus"), ladder.settings_for("tiny")
    per_step = s.batch_size * s.grad_accum * PRESETS["tiny"]["model"]["block_size"]
    base = math.ceil(s.base_epochs * sum(c.units[u]["tokens"] for u in c.primitive_units()) / per_step)
    adapter = ladder.adapter_steps(s, c.units["atoms-00"]["tokens"], per_step, replay=0.0)  # nothing to rehearse
    readme, lr = (root / "README.md").read_text(), lambda x: f"{x:.0e}".replace("e-0", "e-")  # 3e-3
    assert (base, adapter) == (993, 125)
    assert f"--batch-size {s.batch_size} --lr {lr(s.base_lr)} --max-steps {base} --out base" in readme
    assert f"--lr {lr(s.lora_lr)} --weight-decay 0 --batch-size {s.batch_size} --max-steps {adapter} --out a0" in readme
