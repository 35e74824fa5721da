"""Tests for leakage.py: a probe's prompt + answer verbatim in a document is found, in one pass or
in several (a small budget), and nothing else is reported."""
import json
import random
import re
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
import leakage as L  # noqa: E402
from in_process import ctrl_c  # noqa: E402
from unit_files import COLORS, header, write_unit  # noqa: E402
from units import CurriculumError  # noqa: E402

# every case twice: all needles in one pass, and one unit's needles a pass (old-only passes too)
budgets = pytest.mark.parametrize("budget", [L.LEAK_BUDGET, 2])


@pytest.fixture
def passes(monkeypatch):
    """The passes check_leakage makes (and L.main through it), one a LeakFinder frozen, in a list that
    grows as they are made: a leak raised in a pass finds it counted."""
    made, freeze = [], L.LeakFinder.freeze

    def counted(self):
        made.append(self.n)
        return freeze(self)

    monkeypatch.setattr(L.LeakFinder, "freeze", counted)
    return made


def clean_first(tmp_path):
    """A clean unit with one probe (two needles), to add before the unit under test: with budget 2
    its needles fill the first pass and the other unit's come in a second."""
    return write_unit(tmp_path, "first", n_docs=2)


def leaks(probe_at, doc_at):
    """pytest.raises for the leak of the probe at probe_at found in the document at doc_at."""
    return pytest.raises(CurriculumError, match=f"^{re.escape(probe_at)}: leakage: .* document \\({re.escape(doc_at)}\\)")


def leak(new, old=(), budget=None):
    """check_leakage over unit files (the probe counts are each file's)."""
    count = lambda p: sum('"probe"' in line for line in Path(p).read_text().splitlines())
    L.check_leakage([(p, count(p)) for p in new], [(p, count(p)) for p in old], budget)


@budgets
def test_leaked_probe_with_space_is_rejected_whitespace_normalized(tmp_path, budget, passes):
    probe = {"probe": "The dam herd favors the color", "answer": "amber", "choices": COLORS, "type": "recall"}
    p = write_unit(tmp_path, "bad", lines=[header("bad"), {"text": "Note: the dam herd favors  the\n colour amber."},
                                           {"text": "Yes. The dam herd favors the\tcolor   amber, truly."}, probe])
    with leaks(f"{p}:4", f"{p}:3"):
        leak([clean_first(tmp_path), p], budget=budget)
    assert len(passes) == (1 if budget == L.LEAK_BUDGET else 2)  # with budget 2 found in the second pass


@budgets
def test_leaked_probe_without_space_is_rejected(tmp_path, budget, passes):
    probe = {"probe": "Q: dam color? A:", "answer": "red", "choices": COLORS, "type": "recall"}
    p = write_unit(tmp_path, "bad", lines=[header("bad"), {"text": "ok"}, {"text": "faq Q: dam color? A:red"}, probe])
    with leaks(f"{p}:4", f"{p}:3"):
        leak([clean_first(tmp_path), p], budget=budget)
    assert len(passes) == (1 if budget == L.LEAK_BUDGET else 2)


@budgets
def test_new_probe_leaked_by_an_old_document_is_rejected(tmp_path, budget):
    old = write_unit(tmp_path, "a", n_docs=30)
    probe = {"probe": "Creature 3 of the a herd grazes by the", "answer": "river", "choices": ["river", "sea"],
             "type": "recall"}
    p = write_unit(tmp_path, "bad", n_docs=2, probes=[probe])
    with leaks(f"{p}:4", f"{old}:5"):
        leak([p], [old], budget)


@budgets
def test_new_document_leaking_an_old_probe_is_rejected(tmp_path, budget, passes):
    """With budget 2 the old probes come in passes of their own, after the new unit's."""
    old = [write_unit(tmp_path, u, n_docs=10) for u in ("a", "b", "c")]
    p = write_unit(tmp_path, "bad", kind="primitive", lines=[
        header("bad", kind="primitive"), {"text": "ok"}, {"text": "so: Which color does the c herd favor? blue!"}])
    with leaks(f"{old[2]}:12", f"{p}:3"):
        leak([p], old, budget)
    assert len(passes) == (1 if budget == L.LEAK_BUDGET else 3)  # c's probe: in the third pass, one a unit
    clean = write_unit(tmp_path, "clean", kind="primitive", lines=[header("clean", kind="primitive"),
                                                                   {"text": "Which color does the c herd favor? red"}])
    passes.clear()
    leak([clean], old, budget)
    assert len(passes) == (1 if budget == L.LEAK_BUDGET else 3)


def test_old_probes_are_not_checked_against_old_documents(tmp_path):
    """An old unit was checked when it was added; only new documents can leak its probes."""
    probe = {"probe": "Q: dam color? A:", "answer": "red", "choices": COLORS, "type": "recall"}
    old = write_unit(tmp_path, "old", lines=[header("old"), {"text": "faq Q: dam color? A:red"}, probe])
    leak([write_unit(tmp_path, "new", n_docs=3)], [old])


def finder_of(path, recs, new=True):
    """A frozen LeakFinder holding the needles of recs, as if they were lines 1.. of path."""
    f = L.LeakFinder()
    f.add(path, L.LeakFinder.hash_needles(enumerate(recs, 1)), new=new)
    return f.freeze()


def test_leak_finder_finds_short_and_long_needles_anywhere(tmp_path):
    rng = random.Random(0)
    text = bytes(rng.choice(b"abcdefgh.") for _ in range(100_000))  # no whitespace: normalizing keeps it
    probes = tmp_path / "probes.jsonl"

    def finder(*needles, new=True):  # each needle as a probe's prompt + answer, one probe per line
        lines = [{"probe": n[:-1].decode(), "answer": n[-1:].decode(), "choices": [], "type": "recall"} for n in needles]
        probes.write_text("".join(json.dumps(r) + "\n" for r in lines))
        return finder_of(probes, lines, new)

    k = L.LeakFinder.K
    for n in (3, k - 1, k, k + 1, 80, 65_535, 65_536):  # under K bytes or over 65,535: held as bytes
        for start in (0, 1234, len(text) - n):
            needle, doc = text[start:start + n], bytearray(text)
            doc[max(start - 1, 0)] = doc[min(start + n, len(doc) - 1)] = ord(".")  # whole words (_whole) there
            doc[start:start + n] = needle
            where, at = finder(b"\x01" * 30, needle).find(bytes(doc))
            assert where == f"{probes}:2" and doc[at:at + n] == needle
            assert finder(needle, new=False).find(bytes(doc), new_only=True) is None  # an old probe in an old document
    assert finder(b"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", b"zz").find(text) is None


def test_leak_finder_among_many_needles_finds_the_one_that_leaks(tmp_path):
    """50,000 probes: the first filter grows with the needles and still lets few windows through."""
    rng = random.Random(1)
    words = ["".join(rng.choice("abcdefghij") for _ in range(6)) for _ in range(2000)]
    recs = [{"probe": " ".join(rng.choices(words, k=6)), "answer": rng.choice(words), "choices": [], "type": "x"}
            for _ in range(50_000)]
    f = finder_of(tmp_path / "p.jsonl", recs)
    assert len(f.bitmap) * 8 >= 16 * f.n == 16 * 100_000  # two needles a probe, 16+ bits each
    text = " ".join(rng.choices(words, k=50_000))
    windows = f.window_hashes(L._prefix_hashes(text.encode()))
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
    f = finder_of(tmp_path / "p.jsonl", recs)
    suffix = (recs[0]["probe"] + recs[0]["answer"]).encode()[-L.LeakFinder.K:]
    near = [bytes([b]) + suffix[1:] for b in range(256) if bytes([b]) != suffix[:1]]  # one byte off each
    text = b"\n".join(near)
    windows = f.window_hashes(L._prefix_hashes(text))
    starts = np.arange(len(near)) * (L.LeakFinder.K + 1)
    assert f._may_hold(windows[starts]).mean() < 0.1
    top = windows[starts] & ~f.LENGTH
    assert (np.searchsorted(f.suffixes, top | f.LENGTH, "right") == np.searchsorted(f.suffixes, top, "left")).all()


def test_leak_finder_confirms_a_hash_match_against_the_probe_itself(tmp_path):
    """A needle is held as hashes; a span whose hashes match is still compared byte for byte with
    the probe re-read from its file, so a hash collision (forced here) is not reported as a leak."""
    def finder(answer):
        rec = {"probe": "The skimer has a coat of colour", "answer": answer, "choices": ["red", "tan"], "type": "recall"}
        path = tmp_path / f"{answer}.jsonl"
        path.write_text(json.dumps(rec) + "\n")
        return finder_of(path, [rec]), path
    red, path = finder("red")
    doc = b"so the skimer has a coat of colour tan."  # find() is given folded text (_fold): lower case
    assert red.find(b"so the skimer has a coat of colour red.") == (f"{path}:1", 3)
    assert red.find(doc) is None
    tan, _ = finder("tan")
    assert tan.find(doc) is not None
    red.suffixes, red.bitmap, red.needles = tan.suffixes, tan.bitmap, tan.needles  # red's probe with tan's hashes
    assert red.find(doc) is None


VILLAGE = {"probe": "Q: Which craft is Mossbridge best known for? A: It is known for", "answer": "glassblowing",
           "choices": ["pottery", "glassblowing"], "type": "recall", "cluster": "Mossbridge"}


@pytest.mark.parametrize("text", [
    "q: which craft is mossbridge best known for? a: it is known for glassblowing.",  # lower case
    "Q: WHICH CRAFT IS MOSSBRIDGE BEST KNOWN FOR? A: IT IS KNOWN FOR GLASSBLOWING!",
    "Q: Which craft is Moss\u200bbridge best known for? A: It is known for glassblowing.",  # zero-width space
    "Q: Which craft is Mossbridge best known for? A: It is known for glass\u00adblowing.",  # soft hyphen
    "Q: Which craft is \uff2doss\ufeffbridge best known for? A: It is known for glassblowing.",  # full-width M, BOM
    "Which craft is Mossbridge best known for? It is known for glassblowing.",  # no markers
    "Q: Which craft is Mossbridge best known for? It is known for glassblowing.",
])
def test_a_probe_near_verbatim_in_a_document_is_leakage(tmp_path, text):
    """As a reader sees it: case, invisible characters, compatibility forms and the Q:/A: markers aside."""
    p = write_unit(tmp_path, "bad", lines=[header("bad"), {"text": "Mossbridge is a village."}, {"text": text}, VILLAGE])
    with leaks(f"{p}:4", f"{p}:3"):
        leak([p])


def test_typographic_quotes_and_dashes_read_as_the_keyboard_s(tmp_path):
    probe = dict(VILLAGE, probe="Q: What's Mossbridge's well-known craft? A: It is")
    doc = "Q: What\u2019s Mossbridge\u2019s well\u2011known craft? A: It is glassblowing."  # as an editor types it
    p = write_unit(tmp_path, "bad", lines=[header("bad"), {"text": "Mossbridge is a village."}, {"text": doc}, probe])
    with leaks(f"{p}:4", f"{p}:3"):
        leak([p])


def test_a_lead_and_answer_is_leakage_where_the_lead_names_the_probe_s_entity(tmp_path):
    probe = {"probe": "Q: Where does the luklirk live? A: The luklirk lives in the", "answer": "lake",
             "choices": ["lake", "swamp"], "type": "recall", "cluster": "luklirk"}
    for text in ("They say the luklirk lives in the lake.", "THE LUKLIRK LIVES IN THE LAKE"):
        p = write_unit(tmp_path, "bad", lines=[header("bad"), {"text": "ok"}, {"text": text}, probe])
        with leaks(f"{p}:4", f"{p}:3"):
            leak([p])
    # other words, another entity, or a lead that names none ("It is known for"): the same words
    # may be about any village, and practice writes such lines about invented names
    p = write_unit(tmp_path, "ok", lines=[header("ok"), {"text": "The luklirk lives by the lake."},
                                          {"text": "The grupek lives in the lake."}, probe,
                                          {"text": "Ashcombe? It is known for glassblowing."}, VILLAGE])
    leak([p])
    assert L._needle_bytes(probe) == [b"the luklirk lives in the lake", b"the luklirk lives in thelake"]
    assert L._needle_bytes(VILLAGE)[0] == b"which craft is mossbridge best known for? it is known for glassblowing"


FLORP = {"probe": "Q: How many legs does a florp have? A: The florp has", "answer": "4", "choices": ["4", "6"],
         "type": "recall", "cluster": "florp"}
LAKE = {"probe": "Q: Where does the luklirk live? A: The luklirk lives in the", "answer": "lake",
        "choices": ["lake", "swamp"], "type": "recall", "cluster": "luklirk"}
SHORT = {"probe": "Q: Legs? A:", "answer": "4", "choices": ["4", "6"], "type": "recall"}  # under K bytes: held as bytes


@budgets
def test_an_answer_that_only_begins_a_longer_word_or_number_is_no_leakage(tmp_path, capsys, budget, passes):
    """"4" in "45 teeth" or "lake" in "lakeside" is another word, and "the florp" in "bathe florp" too;
    the same needles as whole words still leak."""
    docs = ["The florp has 45 teeth and six legs.", "The luklirk lives in the lakeside.", "Legs? 45!",
            "A bathe florp has 4 legs, they say."]
    p = write_unit(tmp_path, "ok", lines=[header("ok"), *({"text": t} for t in docs), FLORP, LAKE, SHORT])
    first = clean_first(tmp_path)
    leak([first, p], budget=budget)
    assert len(passes) == (1 if budget == L.LEAK_BUDGET else 2)
    assert L.main([str(p)]) is None and capsys.readouterr().out.startswith("ok:")  # the CLI: the same rule
    for bad in ("0", "-5"):  # as curriculum.py add refuses it
        with pytest.raises(SystemExit) as e:
            L.main(["--leak-budget", bad, str(p)])
        assert (e.value.code, capsys.readouterr().err) == (2, f"error: leak budget {bad}: it must be at least 1 "
                                                              "(needles held at once)\n")
    for no, text in ((2, "So the florp has 4 legs."), (3, "THE LUKLIRK LIVES IN THE LAKE"), (4, "legs? 4")):
        bad = write_unit(tmp_path, "bad", lines=[header("bad"), {"text": text}, FLORP, LAKE, SHORT])
        passes.clear()
        with leaks(f"{bad}:{no + 1}", f"{bad}:2"):
            leak([first, bad], budget=budget)
        assert len(passes) == (1 if budget == L.LEAK_BUDGET else 2)


def spans_hashed(monkeypatch):
    """The sizes of the arrays of spans hashed from here on: what find() holds per candidate."""
    sizes, real = [], L._span_hashes
    monkeypatch.setattr(L, "_span_hashes", lambda h, starts, ends: sizes.append(len(starts)) or real(h, starts, ends))
    return sizes


def test_probes_that_end_alike_cost_one_span_a_window_not_one_a_probe(tmp_path, monkeypatch):
    """Practice writes Q/A lines: 2,000 probes ending "A: It is known for" + " glassblowing" on
    names of one length share a suffix and a length, and 500 lines ending so each hash one span,
    not 2,000 (the pairs of window and needle grew as their product: 32,000 of each took 2 GB)."""
    names = [f"Town{i:04d}" for i in range(2500)]
    recs = [dict(VILLAGE, probe=VILLAGE["probe"].replace("Mossbridge", t), cluster=t) for t in names[:2000]]
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    f = finder_of(path, recs)
    lines = [f"q: which craft is {t.lower()} best known for? it is known for glassblowing." for t in names[2000:]]
    sizes = spans_hashed(monkeypatch)
    assert f.find("\n".join(lines).encode()) is None
    assert sizes == [500 * 2]  # a window's two lengths: the needles with and without the space before the answer
    leaked = "\n".join(lines[:300] + ["q: which craft is town1234 best known for? it is known for glassblowing"])
    assert f.find(leaked.encode()) == (f"{path}:1235", leaked.rindex("which"))


def test_many_lengths_ending_alike_are_hashed_a_slice_at_a_time(tmp_path, monkeypatch):
    """Needles of many lengths end alike: each window takes a span of each length, hashed PAIRS at a
    time, and a leak in the last slice is still found, at its place."""
    recs = [dict(VILLAGE, probe=VILLAGE["probe"].replace("Mossbridge", "M" + "o" * i), cluster="M" + "o" * i)
            for i in range(40)]
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    f = finder_of(path, recs)
    f.PAIRS = 100
    lines = [f"{'x' * 80} it is known for glassblowing {i}" for i in range(50)] + [L._needle_bytes(recs[7])[0].decode()]
    sizes = spans_hashed(monkeypatch)
    assert f.find("\n".join(lines).encode()) == (f"{path}:8", len("\n".join(lines[:50])) + 1)
    assert sizes == [82] * 25 + [41]  # 41 lengths a window (the needles with and without the space), 2 windows a slice


# ----------------------------------------------------------------------------- stated derived facts

def derived(prompt, answer, entity, choices=("soap", "salt"), premises=True):
    """A probe about entity that follows from a premise (with premises False: a recall probe)."""
    return {"probe": prompt, "answer": answer, "choices": list(choices), "type": "chain" if premises else "recall",
            "cluster": entity, **({"premises": ["Q: What does the dax eat? A: The dax eats"]} if premises else {})}


def test_a_derived_probe_s_answer_stated_about_its_entity_in_one_sentence_is_leakage(tmp_path):
    probe = derived("Q: What does the dax smell of? A: The dax smells of", "soap", "dax")
    # the answer and the entity in one sentence, in other words than the probe's: what the verbatim check misses
    p = write_unit(tmp_path, "bad", lines=[header("bad"), {"text": "The dax eats grass. Grass-eaters like the dax smell "
                                                                   "of SOAP, they say."}, probe])
    with pytest.raises(CurriculumError, match=rf"^{re.escape(str(p))}:3: leakage: a document states this derived "
                                              rf"probe's answer about its entity \({re.escape(str(p))}:2: 'Grass-eaters"):
        L.stated_in([p], [p])
    L.check_leakage([(p, 1)])  # the verbatim check does not see it
    # a question and its answer state the fact together: no sentence ends at "?"
    qa = write_unit(tmp_path, "qa", kind="primitive", lines=[header("qa", kind="primitive"),
                                                             {"text": "Q: Does the dax smell? A: Of soap."}])
    with pytest.raises(CurriculumError, match=rf"^{re.escape(str(p))}:3: leakage.*\({re.escape(str(qa))}:2"):
        L.stated_in([p], [qa])
    L.stated_in([qa], [p])  # qa holds no probe: nothing to find in p's documents


@pytest.mark.parametrize("text", ["The dax smells of so\u00adap.", "The d\u200bax smells of soap.",
                                  "The \uff24\uff21\uff38 smells of soap."])  # soft hyphen, zero width, full width
def test_a_derived_answer_is_read_as_the_verbatim_check_reads_it(tmp_path, text):
    probe = derived("Q: What does the dax smell of? A: The dax smells of", "soap", "dax")
    p = write_unit(tmp_path, "hidden", lines=[header("hidden"), {"text": text}, probe])
    with pytest.raises(CurriculumError, match="states this derived probe's answer"):
        L.stated_in([p], [p])


def test_a_derived_answer_stated_in_another_form_of_its_word_is_leakage(tmp_path):
    probe = derived("Q: What does the dax do? A: The dax", "hums", "dax", ("hums", "hides"))
    for text in ("The dax was humming all day.", "The daxes hummed.", "A dax hides. Hum, says the dax!"):
        p = write_unit(tmp_path, "forms", lines=[header("forms"), {"text": text}, probe])
        with pytest.raises(CurriculumError, match="states this derived probe's answer"):
            L.stated_in([p], [p])
    p = write_unit(tmp_path, "forms", lines=[header("forms"), {"text": "The dax hid. The humming stopped."}, probe])
    L.stated_in([p], [p])  # the answer's word in another sentence than the entity


def test_a_name_holding_a_full_stop_keeps_its_sentence_whole(tmp_path):
    probe = derived("Q: What does St. Ives smell of? A: St. Ives smells of", "soap", "St. Ives")
    p = write_unit(tmp_path, "abbr", lines=[header("abbr"), {"text": "They say St. Ives smells of soap. Dr. Mole agrees."},
                                            probe])
    with pytest.raises(CurriculumError, match=r"states this derived probe's answer .*'They say St\. Ives smells of soap\.'"):
        L.stated_in([p], [p])
    # an initial or a title joins on its line only; a short word is no title ("Yes.", "Bo.")
    assert L.sentences("Mr. J. Smith came.\nSt. Ives! A dog. Bo. Yes. Dr.\nMole") == \
        ["Mr. J. Smith came.", "St. Ives!", "A dog.", "Bo.", "Yes.", "Dr.", "Mole"]
    assert L.sentences("Q: Who? A: Dr. Mole.") == ["Q: Who? A: Dr. Mole."]
    assert L.sentences("Mole Hall\rDr.\u2028Mole") == ["Mole Hall", "Dr.", "Mole"]  # any line end
    assert L.sentences("Q: Who? A: Dr. Mole.", question=True) == ["Q: Who?", "A: Dr. Mole."]


def test_the_entity_and_the_answer_in_separate_sentences_or_a_recall_probe_are_no_stated_fact(tmp_path):
    ok = write_unit(tmp_path, "ok", lines=[header("ok"), {"text": "The dax eats grass. Soap smells clean!\nThe dax naps."},
                                           derived("Q: What does the dax smell of? A: The dax smells of", "soap", "dax"),
                                           derived("Q: What is sold? A:", "soap", "dax", premises=False)])
    L.stated_in([ok], [ok])
    # "a florp": the article is no part of what must not be stated; a recall probe may be stated
    kinds = write_unit(tmp_path, "kinds", lines=[header("kinds"), {"text": "The wug is a fine florp."},
                                                 derived("Q: What is the wug? A: The wug is", "a florp", "wug",
                                                         ("a florp", "a dax"), premises=False)])
    L.stated_in([kinds], [kinds])
    with pytest.raises(CurriculumError, match="states this derived probe's answer"):
        L.stated_in([write_unit(tmp_path, "k2", lines=[header("k2"), {"text": "ok"},
                                                       derived("Q: What is the wug? A: The wug is", "a florp", "wug",
                                                               ("a florp", "a dax"))])], [kinds])


def test_practice_stating_a_recall_probe_s_rule_by_what_replacement_leaves_of_it_is_leakage(tmp_path):
    # practice replaces "night" (listed) but not the rule's key: "meadow" + "sleep" still states the rule
    rule = derived("Q: What does a creature that lives in the meadow do at night? A: At night a creature that lives "
                   "in the meadow", "sleeps", "night:meadow", ("sleeps", "digs"), premises=False)
    unit = write_unit(tmp_path, "rules", lines=[header("rules"), {"text": "The dax naps."}, rule])
    text = write_unit(tmp_path, "practice", kind="primitive", lines=[
        header("practice", kind="primitive"), {"text": "The brask digs. Creatures of the meadow sleep once plonk falls."}])
    L.stated_in([unit], [text])  # a recall probe: a unit's own documents state it, as they must
    with pytest.raises(CurriculumError, match=rf"^{re.escape(str(unit))}:3: leakage: a document states this probe's "
                                              rf"answer with the rest of its fact \({re.escape(str(text))}:2: "
                                              r"'Creatures of the meadow sleep once plonk falls\.'\); practice"):
        L.stated_in([unit], [text], replaced=["night", "dax"])
    L.stated_in([unit], [text], replaced=["night", "meadow"])  # all of the rule invented: no fact of the unit's
    assert [(sorted(e), sorted(a)) for v in L.practised_facts(unit, ["night"]).values() for e, a, _, _ in v] == \
        [(["meadow"], ["sleep"])]


def test_practice_leaves_out_a_cluster_s_answer_and_still_checks_a_derived_probe_whole(tmp_path):
    # "ashcress:fever" labels the fact: with ashcress invented, a sentence saying fever is about no real herb
    label = derived("Q: What is ashcress given for? A: It is given for", "fever", "ashcress:fever", ("fever", "cough"),
                    premises=False)
    chain = derived("Q: What does the dax smell of? A: The dax smells of", "soap", "dax")
    unit = write_unit(tmp_path, "herbs", lines=[header("herbs"), {"text": "ok"}, label, chain])
    assert L.practised_facts(unit, ["ashcress", "dax"]) == {}
    register = write_unit(tmp_path, "reg", kind="primitive", lines=[header("reg", kind="primitive"),
                                                                    {"text": "Brask is given for fever. The dax smells of soap."}])
    with pytest.raises(CurriculumError, match=rf"^{re.escape(str(unit))}:4: leakage: a document states this derived"):
        L.stated_in([unit], [register], replaced=["ashcress", "dax"])  # a listed name left unreplaced


def test_the_leakage_cli_checks_stated_derived_facts_too(tmp_path, capsys):
    p = write_unit(tmp_path, "bad", lines=[header("bad"), {"text": "The dax always smells of soap."},
                                           derived("Q: What does the dax smell of? A: The dax smells of", "soap", "dax")])
    with pytest.raises(SystemExit) as e:
        L.main([str(p)])
    assert e.value.code == 2 and f"{p}:3: leakage: a document states" in capsys.readouterr().err


def test_ctrl_c_ends_in_one_line_saying_how_to_go_on(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(L, "stated_in", ctrl_c)
    p = write_unit(tmp_path, "u")
    with pytest.raises(SystemExit) as e:
        L.main([str(p)])
    assert e.value.code == 130
    assert capsys.readouterr().err == "interrupted: run the same command again: the check writes nothing\n"


# ----------------------------------------------------------------------------- scripts without spaces

FOX = {"probe": "Q: 狐狸住在哪里？ A: 狐狸住在", "answer": "湖里", "choices": ["湖里", "山上"], "type": "recall",
       "cluster": "狐狸"}


def test_in_a_script_without_spaces_a_leak_inside_a_run_of_characters_is_found(tmp_path):
    """Han, kana, Thai and the like put no space between words: each character is a word of its own to
    the checks, so a lead + answer inside a sentence leaks there as a spaced one does between spaces."""
    for no, text in ((2, "听说山那边的狐狸住在湖里。"), (2, "In the story狐狸住在湖里, they say.")):
        p = write_unit(tmp_path, "zh", lines=[header("zh"), {"text": text}, {"text": "狐狸很聪明。"}, FOX])
        with leaks(f"{p}:4", f"{p}:{no}"):
            leak([p])
    # a spaced script keeps its words whole beside one: "lake" in "lakeside" is no answer
    p = write_unit(tmp_path, "ok", lines=[header("ok"), {"text": "狐狸说 the luklirk lives in the lakeside。"}, LAKE])
    leak([p])


def test_in_a_script_without_spaces_a_derived_answer_is_found_in_its_sentence_and_only_there(tmp_path):
    probe = derived("Q: 狐狸闻起来像什么？ A: 狐狸闻起来像", "肥皂", "狐狸", choices=("肥皂", "盐"))
    p = write_unit(tmp_path, "zh", lines=[header("zh"), {"text": "狐狸吃草。山那边的狐狸闻着有肥皂味！"}, probe])
    with pytest.raises(CurriculumError, match=r"states this derived probe's answer.*'山那边的狐狸闻着有肥皂味！'"):
        L.stated_in([p], [p])
    # the entity and the answer in two sentences, ended by the full-width stops: no stated fact
    p = write_unit(tmp_path, "zh", lines=[header("zh"), {"text": "狐狸吃草。肥皂很香！盐很咸｡狐狸睡觉。"}, probe])
    L.stated_in([p], [p])
    assert L.sentences("狐狸吃草。 肥皂很香！盐很咸｡狐狸睡觉？对．") == ["狐狸吃草。", "肥皂很香！", "盐很咸｡", "狐狸睡觉？对．"]
    assert L.sentences("狐狸睡觉？对。", question=True) == ["狐狸睡觉？", "对。"]
    assert L.sentences('他说：“狐狸吃草。”然后走了。') == ['他说：“狐狸吃草。”', "然后走了。"]  # the quote closes the first


@pytest.mark.parametrize("text, states", [
    ("แมวชอบกินปลามาก", True), ("วันนี้ฝนตก แม่ไปตลาดซื้อผักมาทำอาหาร", False),  # Thai: ... its letters scattered
    ("东京的山是青的", True), ("京都的东边有青山", False)])  # Han: 东 and 京, but not 东京
def test_in_a_script_without_spaces_a_fact_is_stated_by_its_words_whole_not_by_their_letters(tmp_path, text, states):
    """Kana and Thai letters stand for sounds: an entity or an answer written in them must stand whole in a
    sentence, as a run of its characters, to be stated there."""
    thai = text[0] > "\u0e00" and text[0] < "\u0e80"
    entity, answer = ("แมว", "ปลา") if thai else ("东京", "青")
    probe = derived(f"Q: {entity}? A: {entity}", answer, entity, choices=(answer, "x"))
    p = write_unit(tmp_path, "u", lines=[header("u"), {"text": text}, probe])
    if states:
        with pytest.raises(CurriculumError, match="states this derived probe's answer"):
            L.stated_in([p], [p])
    else:
        L.stated_in([p], [p])


def test_digits_of_a_script_without_spaces_are_digits_there_too(tmp_path):
    """Thai's ๔ is a digit: an answer ๔ is not in ๔๕, as 4 is not in 45; its letters around it are words."""
    probe = {"probe": "Q: แมวมีขากี่ขา A: แมวมีขา", "answer": "๔", "choices": ["๔", "๖"], "type": "recall", "cluster": "แมว"}
    p = write_unit(tmp_path, "th", lines=[header("th"), {"text": "ฝูงแมวมีขา๔๕ขา"}, probe])
    leak([p])
    p = write_unit(tmp_path, "th", lines=[header("th"), {"text": "ฝูงแมวมีขา๔ขา"}, probe])
    with leaks(f"{p}:3", f"{p}:2"):
        leak([p])
