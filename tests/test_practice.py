"""practice.py: what a base needs to learn a user's own knowledge units, derived from them."""
import json
import os
import subprocess
import sys
import random
import re
from pathlib import Path

import pytest

import curriculum
import practice
from in_process import ctrl_c, run_main
from units import UNIT_ID

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "data" / "examples").glob("*.jsonl"))


def write_unit(path, uid, docs, probes, concepts):
    header = {"unit": uid, "kind": "knowledge", "level": 0, "title": uid, "concepts": concepts, "requires": [],
              "source": "test", "license": "CC0-1.0"}
    path.write_text("".join(json.dumps(x) + "\n" for x in [header] + [{"text": d} for d in docs] + probes))
    return path


def probe(prompt, answer, choices):
    return {"probe": prompt, "answer": answer, "choices": choices, "type": "recall"}


@pytest.fixture
def ships(tmp_path):
    docs = ["The Silver Gull carries tea. The Red Heron carries salt.", "Everyone knows the Silver Gull."]
    probes = [probe("Q: What does the Silver Gull carry? A: It carries", "tea", ["tea", "salt"]),
              probe("Q: What does the Red Heron carry? A: It carries", "salt", ["tea", "salt"]),
              probe("Q: Which ship carries tea? A: The ship is the", "Silver Gull", ["Silver Gull", "Red Heron"])]
    return write_unit(tmp_path / "ships.jsonl", "ships", docs, probes, ["Silver Gull", "Red Heron", "Gull", "sea"])


def test_names_asked_are_the_concepts_the_probes_ask_about_longest_first(ships):
    header, _, probes = practice.read(ships)
    # "sea" is never asked about; "Gull" only inside "Silver Gull", which is replaced first
    assert practice.names_asked(header, probes) == ["Silver Gull", "Red Heron", "Gull"]


def test_new_words_are_the_names_and_answers_the_primitive_text_never_uses(ships):
    unit = practice.read(ships)
    assert practice.new_words([unit], known={"silver", "gull", "tea", "salt", "red"}) == ["Red Heron"]
    assert practice.new_words([unit], known={"silver", "red", "heron"}) == ["Silver Gull", "Gull", "tea", "salt"]


def test_derived_practice_replaces_every_asked_name_and_asks_in_the_unit_s_own_frames(ships):
    counter = iter(range(100))
    header, docs = practice.derive(ships, lambda: f"nonce{next(counter)}", random.Random(0))
    text = " ".join(docs)
    assert header["kind"] == "primitive" and header["unit"] == "practice-ships"
    assert "Silver Gull" not in text and "Red Heron" not in text and "Gull" not in text
    assert re.search(r"Nonce\d+ Nonce\d+ carries tea", text)  # the statements, on invented names
    qa = [q for d in docs for q in re.findall(r"Q: [^?]*\? A: [^.]*\.", d)]
    assert len(qa) == 3 and {q.split(" A: ")[0].split(" the ")[0] for q in qa} == {"Q: What does", "Q: Which ship carries tea?"}
    assert any(q.endswith("It carries tea.") for q in qa)


def test_a_name_another_unit_lists_is_replaced_too_so_practice_states_no_fact_the_probes_ask(ships, tmp_path):
    # a later unit asks about a ship that only the first unit lists: its practice must not keep the name,
    # or the base's own text would answer the held-out question about the real ship
    docs = ["The Red Heron is fast.", "The Silver Gull is slow."]
    probes = [dict(probe("Q: How fast is the Red Heron? A: It is", "fast", ["fast", "slow"]), type="inference_id")]
    later = write_unit(tmp_path / "speed.jsonl", "speed", docs, probes, ["speed"])
    header, _, ps = practice.read(later)
    assert practice.names_asked(header, ps) == []  # the unit's own header lists no name
    ships_concepts = practice.read(ships)[0]["concepts"]
    assert practice.names_asked(header, ps, ships_concepts) == ["Red Heron"]
    counter = iter(range(100))
    _, out = practice.derive(later, lambda: f"nonce{next(counter)}", random.Random(0), concepts=ships_concepts)
    assert "Red Heron" not in " ".join(out) and "It is fast." in " ".join(out)
    written = practice.support([ships, later], tmp_path / "support", log=lambda m: None)
    text = (tmp_path / "support" / "practice-speed.jsonl").read_text()
    assert any(p.name == "practice-speed.jsonl" for p in written) and "Heron" not in text and "It is fast." in text


def test_support_refuses_practice_that_states_a_derived_probe_s_answer_and_leaves_no_file(ships, tmp_path,
                                                                                         monkeypatch):
    """With every unit's concepts ignored (the rule before) and derive's filter off, the later unit's practice
    would state, on the real ship, the answer its derived probe holds out: the check names it, and nothing is
    left behind."""
    probes = [probe("Q: How fast is the Blue Swan? A: It is", "slow", ["fast", "slow"]),
              dict(probe("Q: Unlike the Blue Swan, how fast is the Red Heron? A: It is", "fast", ["fast", "slow"]),
                   type="inference_id", cluster="Red Heron", premises=["Q: What does the Red Heron carry? A: It carries"])]
    later = write_unit(tmp_path / "speed.jsonl", "speed", ["The Blue Swan is slow."], probes, ["Blue Swan"])
    practice.support([ships, later], tmp_path / "ok", log=lambda m: None)  # every unit's names replaced: no leak
    monkeypatch.setattr(practice, "all_concepts", lambda units: [])
    monkeypatch.setattr(practice, "stating", lambda sentence, facts: None)  # the check behind it, alone
    with pytest.raises(curriculum.CurriculumError, match=rf"^{later}:4: leakage: a document states this derived probe's "
                                              rf"answer .*practice-speed.jsonl"):
        practice.support([ships, later], tmp_path / "bad", log=lambda m: None)
    assert not list((tmp_path / "bad").glob("*.jsonl"))


def test_support_fails_whole_on_a_later_unit_s_error_and_leaves_no_file(ships, tmp_path):
    bad = write_unit(tmp_path / "bad.jsonl", "bad", ["The sky is blue."],
                     [probe("Q: What color is the sky? A: It is", "blue", ["blue", "red"])], ["ocean"])
    with pytest.raises(curriculum.CurriculumError, match="bad.jsonl: none of the header's concepts"):
        practice.support([ships, bad], tmp_path / "out", log=lambda m: None)
    assert not list((tmp_path / "out").glob("*.jsonl"))


def test_support_removes_no_file_of_the_user_s_and_refuses_the_units_own_directory(ships, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    mine = out / "atoms-01.jsonl"  # named like a built-in world unit, but the user's
    mine.write_text("mine")
    practice.support([ships], out, log=lambda m: None)
    assert mine.read_text() == "mine"
    with pytest.raises(curriculum.CurriculumError, match=rf"^{tmp_path}: holds the units given"):
        practice.support([ships], tmp_path, log=lambda m: None)
    with pytest.raises(ValueError, match=rf"^{mine}: is a file, where the output directory would be made$"):
        practice.support([ships], mine, log=lambda m: None)
    assert ships.is_file() and mine.read_text() == "mine"
    # a support unit written there before, for a unit not given now, would be taken in with these
    ports = write_unit(tmp_path / "ports.jsonl", "ports", ["Sliglan is a port by the sea."],
                       [probe("Q: Where is Sliglan? A: It is by the", "sea", ["sea", "hills"])], ["Sliglan"])
    before = {f.name: f.read_bytes() for f in out.iterdir()}
    with pytest.raises(curriculum.CurriculumError, match=rf"^{out / 'practice-ships.jsonl'}: a support unit written "
                                                         r"here before \(for units not given now\)"):
        practice.support([ports], out, log=lambda m: None)
    assert {f.name: f.read_bytes() for f in out.iterdir()} == before
    placed = {f.name for f in practice.support([ships, ports], out, log=lambda m: None)}
    assert placed == set(before) - {"atoms-01.jsonl"} | {"practice-ports.jsonl"}  # the old ones replaced, one added


def test_each_copy_of_practice_has_names_of_its_own(ships):
    counter = iter(range(100))
    _, docs = practice.derive(ships, lambda: f"nonce{next(counter)}", random.Random(0), copies=3)
    qa = [q for d in docs for q in re.findall(r"Q: [^?]*\? A: [^.]*\.", d)]
    ships = {m for q in qa for m in re.findall(r"Nonce\d+ Nonce\d+(?= carry)", q)}  # "What does the X carry?"
    assert len(qa) == 9 and len(ships) == 6  # 3 probes x 3 copies; the 2 ships named anew in each copy
    assert " ".join(docs).count("carries tea") == 3 * 3  # per copy: the statement and two Q/A lines


def test_a_primitive_unit_is_refused_as_one_practice_is_not_derived_from(tmp_path, capsys):
    f = tmp_path / "prim.jsonl"
    f.write_text(json.dumps({"unit": "prim", "kind": "primitive", "level": 0, "title": "p", "concepts": [],
                             "requires": [], "source": "test", "license": "CC0-1.0"}) + "\n" +
                 json.dumps({"text": "The sky is blue."}) + "\n")
    r = run_main(practice.main, [f, "--out", tmp_path / "out"], capsys)
    assert (r.returncode, r.stderr) == (2, f"error: {f}: a primitive unit; practice is derived from knowledge units "
                                           "alone (give primitive units to the ladder with --primitive)\n")
    assert not (tmp_path / "out").exists()


def test_a_unit_whose_probes_name_none_of_its_concepts_gets_a_clear_error(tmp_path):
    f = write_unit(tmp_path / "u.jsonl", "u", ["The sky is blue."],
                   [probe("Q: What color is the sky? A: It is", "blue", ["blue", "red"])], ["ocean"])
    with pytest.raises(curriculum.CurriculumError, match=r"u\.jsonl: none of the header's concepts appears in its probes"):
        practice.derive(f, lambda: "x", random.Random(0))


def test_support_for_the_example_units_adds_primitive_text_a_register_and_leak_free_practice(tmp_path):
    written = practice.support(EXAMPLES, tmp_path / "support", log=lambda m: None)
    names = sorted(p.name for p in written)
    assert names == ["practice-herbs.jsonl", "practice-ships.jsonl", "practice-villages.jsonl",
                     "prim-00.jsonl", "prim-01.jsonl", "prim-02.jsonl"]
    prim = " ".join(p.read_text() for p in written if p.name.startswith("prim-"))
    for name in ("Elderholt", "Silver Gull", "moonwort", "Harrowgate"):  # a name, and an answer, of each unit
        assert prim.count(name) >= 12, name  # the register: each new name in neutral sentences
    corpus = tmp_path / "corpus"  # the units and their support pass add's checks, leakage included
    curriculum.init(corpus, EXAMPLES + written, vocab_size=600)
    added = curriculum.add(corpus, EXAMPLES + written, log=lambda m: None)
    assert sorted(added) == sorted(["herbs", "ships", "villages"] + [p.stem for p in written])


def test_support_is_the_same_under_any_hash_seed(tmp_path):
    # names of equal length once came out in set order, which Python's hash seed changes per process
    code = ("import sys; sys.path.insert(0, '.'); import practice, pathlib; "
            "practice.support(sorted(pathlib.Path('data/examples').glob('*.jsonl')), sys.argv[1], log=lambda m: None)")
    for hash_seed in ("1", "2"):
        subprocess.run([sys.executable, "-c", code, str(tmp_path / hash_seed)], cwd=ROOT, check=True,
                       env={**os.environ, "PYTHONHASHSEED": hash_seed})
    files = sorted(p.name for p in (tmp_path / "1").glob("*.jsonl"))
    assert len(files) == 6 and all((tmp_path / "1" / f).read_bytes() == (tmp_path / "2" / f).read_bytes()
                                   for f in files)


HERBS = ["Moonwort is used against cough by the old healers.", "A tea of moonworts soothes a cough.",
         "The moonwort's root is bitter.", "Ashcress is given for fever in winter."]


def herbs(tmp_path, docs=HERBS):
    probes = [probe("Q: What is moonwort used against? A: It is used against", "cough", ["cough", "fever"]),
              probe("Q: What is ashcress given for? A: It is given for", "fever", ["cough", "fever"])]
    return write_unit(tmp_path / "herbs.jsonl", "herbs", docs, probes, ["moonwort", "ashcress"])


def test_a_name_is_replaced_in_any_case_plural_and_possessive_keeping_its_capital(tmp_path):
    # practice is primitive text the base pretrains on: "Moonwort" at a sentence's start, "moonworts" or
    # "moonwort's" left in it would teach the base the unit's real facts
    counter = iter(range(100))
    _, docs = practice.derive(herbs(tmp_path), lambda: f"nonce{next(counter)}", random.Random(0), copies=2)
    text = " ".join(docs)
    assert not re.search("moonwort|ashcress", text, re.IGNORECASE)
    assert len(re.findall(r"(?<!\w)Nonce\d+ is used against cough by the old healers\.", text)) == 2
    assert len(re.findall(r"(?<!\w)Nonce\d+ is given for fever in winter\.", text)) == 2
    assert len(re.findall(r"A tea of nonce\d+s soothes a cough\.", text)) == 2
    assert len(re.findall(r"The nonce\d+'s root is bitter\.", text)) == 2
    assert len(re.findall(r"Q: What is nonce\d+ used against\? A: It is used against cough\.", text)) == 2
    # one invented name per herb and copy, whatever the case or form it replaces
    assert {n.lower() for n in re.findall(r"(?<!\w)nonce\d+", text, re.IGNORECASE)} == {f"nonce{i}" for i in range(4)}


def test_practice_that_would_still_name_a_listed_concept_is_refused(tmp_path):
    # the last guard: an invented name that equals a listed one puts that name back into the practice
    names = iter(["ashcress", "nonce1", "nonce2"])  # moonwort (listed first) -> "ashcress"
    with pytest.raises(curriculum.CurriculumError, match=rf"^{tmp_path / 'herbs.jsonl'}: its practice would still name "
                                                         "the listed concept '[Aa]shcress'"):
        practice.derive(herbs(tmp_path), lambda: next(names), random.Random(0))


def test_a_name_another_unit_lists_is_replaced_in_documents_its_probes_never_ask_about(tmp_path):
    # ports never asks about the Silver Gull, but ships2 lists it: ports' documents must not carry it
    ports = write_unit(tmp_path / "ports.jsonl", "ports",
                       ["The Silver Gull carries salt out of Sliglan every week.", "Sliglan is a port."],
                       [probe("Q: Where is Sliglan? A: It is by the", "sea", ["sea", "hills"])], ["Sliglan"])
    ships2 = write_unit(tmp_path / "ships2.jsonl", "ships2", ["The Silver Gull is a fast ship."],
                        [probe("Q: How fast is the Silver Gull? A: It is", "fast", ["fast", "slow"])], ["Silver Gull"])
    practice.support([ports, ships2], tmp_path / "out", copies=2, log=lambda m: None)
    text = " ".join(json.loads(line).get("text", "") for line in (tmp_path / "out" / "practice-ports.jsonl").open())
    assert not re.search("silver|gull|sliglan", text, re.IGNORECASE)
    carried = re.findall(r"The ([A-Z][a-z]+ [A-Z][a-z]+) carries salt out of ([A-Z][a-z]+) every week\.", text)
    assert len(carried) == 2 and len({ship for ship, _ in carried}) == 2  # a ship of its own in each copy


def test_a_failure_inside_the_primitive_text_leaves_no_file_and_keeps_the_user_s(tmp_path, monkeypatch):
    ships = write_unit(tmp_path / "ships.jsonl", "ships", ["The Silver Gull carries tea."],
                       [probe("Q: What does the Silver Gull carry? A: It carries", "tea", ["tea", "salt"])],
                       ["Silver Gull"])
    prepare = practice._world()
    real, seen = prepare._write_unit, []

    def full_disk(path, uid, *args):
        seen.append(uid)
        if seen.count("prim-01") == 2:  # the first prim-01 is the copy that practice reads for its words
            raise OSError(28, "No space left on device")
        return real(path, uid, *args)

    monkeypatch.setattr(prepare, "_write_unit", full_disk)
    out = tmp_path / "out"
    out.mkdir()
    (out / "prim-00.jsonl").write_text("mine")  # the user's, named like the primitive text
    (out / "notes.txt").write_text("mine too")
    with pytest.raises(OSError, match="No space left"):
        practice.support([ships], out, log=lambda m: None)
    assert sorted(p.name for p in out.rglob("*")) == ["notes.txt", "prim-00.jsonl"]
    assert (out / "prim-00.jsonl").read_text() == "mine" and (out / "notes.txt").read_text() == "mine too"
    seen.clear()
    with pytest.raises(OSError, match="No space left"):
        practice.support([ships], tmp_path / "new", log=lambda m: None)
    assert not (tmp_path / "new").exists()  # nothing left, not even the directory it made


def test_a_cluster_the_documents_name_but_no_concepts_list_is_refused_before_anything_is_written(tmp_path):
    # practice copies the sentences of a name no header lists unchanged: the base would pretrain on
    # Mossbridge's facts before its adapter is trained and tested on them
    lines = [json.loads(line) for line in (ROOT / "data" / "examples" / "villages.jsonl").open()]
    lines[0]["concepts"].remove("Mossbridge")
    villages = tmp_path / "villages.jsonl"
    villages.write_text("".join(json.dumps(x) + "\n" for x in lines))
    refused = rf"^{re.escape(str(villages))}: .*cluster 'Mossbridge'.*; list it in \"concepts\"$"
    with pytest.raises(curriculum.CurriculumError, match=refused):
        practice.support([villages], tmp_path / "sup", copies=2, log=lambda m: None)
    assert not (tmp_path / "sup").exists()
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(curriculum.CurriculumError, match=refused):
        practice.support([villages], out, copies=2, log=lambda m: None)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    with pytest.raises(curriculum.CurriculumError, match=refused):
        practice.derive(villages, lambda: "x", random.Random(0))


def test_a_cluster_is_refused_in_any_case_and_form_and_passes_where_any_unit_lists_it(tmp_path):
    docs = ["The SILVER GULL's hold is full of salt.", "Sliglan is a port."]
    probes = [dict(probe("Q: Where is Sliglan? A: It is by the", "sea", ["sea", "hills"]), cluster="Silver Gull")]
    ports = write_unit(tmp_path / "ports.jsonl", "ports", docs, probes, ["Sliglan"])
    with pytest.raises(curriculum.CurriculumError, match=rf"^{re.escape(str(ports))}: .*'Silver Gull'"):
        practice.derive(ports, lambda: "x", random.Random(0))
    counter = iter(range(100))  # another unit's header lists it: replaced, so it passes
    _, out = practice.derive(ports, lambda: f"nonce{next(counter)}", random.Random(0), concepts=["Silver Gull"])
    assert not re.search("silver|gull", " ".join(out), re.IGNORECASE)


def test_a_cluster_the_documents_never_name_passes_and_a_value_stated_of_no_listed_name_is_left_out(tmp_path):
    # a cluster may label a fact, not an entity ("night:meadow", a rule's); the rule itself names no listed
    # name, so copied it would state the unit's fact in the base's primitive text: it is left out, as a
    # sentence naming no value (framing) is not
    rule = "Every creature that lives in the meadow sleeps at night."
    docs = [d + " " + rule + " The herb book of the old healer says this." for d in HERBS]
    probes = [dict(probe("Q: What does a creature of the meadow do at night? A: It", "sleeps", ["sleeps", "hunts"]),
                   cluster="night:meadow"),
              dict(probe("Q: What is ashcress given for? A: It is given for", "fever", ["cough", "fever"]),
                   cluster="ashcress:fever")]
    f = write_unit(tmp_path / "herbs.jsonl", "herbs", docs, probes, ["moonwort", "ashcress"])
    counter = iter(range(100))
    _, out = practice.derive(f, lambda: f"nonce{next(counter)}", random.Random(0), copies=3)
    text = " ".join(out)
    assert "meadow" not in text and "sleeps" not in text  # neither the rule nor its Q/A line
    assert text.lower().count("nonce") >= 3 * len(HERBS)  # the herbs' sentences, on invented names
    assert text.count("The herb book of the old healer says this.") == 3 * len(HERBS)


def test_a_sentence_saying_the_answer_of_a_probe_that_names_no_listed_name_is_left_out(tmp_path):
    # Bob is no listed name, so practice keeps him as he is and has no cluster to screen by: the sentence
    # naming him beside an invented town would teach the base his trade
    docs = ["Bob, who came from Mossbridge, works as a baker. Mossbridge lies by the river. Mossbridge has a mill.",
            "Bob, the pride of Mossbridge, is the best of the bakers. Mossbridge lies by the river. Mossbridge has a mill.",
            "Mossbridge loves Bob's bread: the baker's loaves! Mossbridge lies by the river. Mossbridge has a mill."]
    probes = [probe("Q: What is Bob's trade? A: Bob works as a", "baker", ["baker", "smith"]),
              probe("Q: Where does Mossbridge lie? A: Mossbridge lies by the", "river", ["river", "sea"])]
    f = write_unit(tmp_path / "town.jsonl", "town", docs, probes, ["Mossbridge"])
    counter = iter(range(100))
    _, out = practice.derive(f, lambda: f"nonce{next(counter)}", random.Random(0))
    said = sorted(s for d in out for s in re.split(r"(?<=\.)\s+", d))
    assert said == ["Nonce0 has a mill."] * 3 + ["Nonce0 lies by the river."] * 3 + \
        ["Q: Where does Nonce0 lie? A: Nonce0 lies by the river."]


def test_practice_splits_sentences_as_its_check_does_so_a_title_keeps_its_sentence(tmp_path):
    # "Dr." ends no sentence: split there, "They say Dr." and "<invented> smells of soap." would each pass the
    # screen, and the check after it would refuse the practice wherever the shuffle put them side by side
    docs = ["They say Dr. Mole smells of soap. The wug naps in the sun.", "Dr. Mole and the wug are friends."] * 4
    probes = [dict(probe("Q: What does Dr. Mole smell of? A: Dr. Mole smells of", "soap", ["soap", "salt"]),
                   cluster="Dr. Mole"),
              probe("Q: Where does the wug nap? A: The wug naps in the", "sun", ["sun", "shade"])]
    f = write_unit(tmp_path / "doc.jsonl", "doc", docs, probes, ["Mole", "wug"])
    for seed in range(12):
        counter = iter(range(1000))
        _, out = practice.derive(f, lambda: f"nonce{next(counter)}", random.Random(seed), copies=2)
        assert not any("soap" in s for s in out) and sum(s.count("naps in the sun") for s in out) == 8 + 2  # and Q/A
        practice.stated_in([f], [write_unit(tmp_path / "out.jsonl", "out", out, [], [])], replaced=["Mole", "wug"])


@pytest.mark.parametrize("doc, cluster", [("Who is Dr. Mole? Nobody knows. The wug hates soap.", "Dr. Mole"),
                                           ("Mole Hall\nNobody knows him. The wug hates soap.", "Mole Hall")])
def test_practice_joins_its_sentences_so_the_check_reads_each_as_it_was_screened(doc, cluster, tmp_path):
    # the check after derive does not end a sentence at "?" or where a line ran on: joined by a space, "Who is
    # Dr. <invented>?" and "The <invented> hates soap." would read as one sentence stating Dr. Mole's soap
    probes = [dict(probe(f"Q: What does {cluster} smell of? A: It smells of", "soap", ["soap", "salt"]), cluster=cluster),
              probe("Q: What does the wug hate? A: The wug hates", "soap", ["soap", "salt"])]
    f = write_unit(tmp_path / "doc.jsonl", "doc", [doc] * 6, probes, ["Mole", "wug"])
    for seed in range(6):
        counter = iter(range(1000))
        _, out = practice.derive(f, lambda: f"nonce{next(counter)}", random.Random(seed), copies=2)
        practice.stated_in([f], [write_unit(tmp_path / "out.jsonl", "out", out, [], [])], replaced=["Mole", "wug"])
        assert sum(d.count("hates soap") for d in out) == 12 + 2  # every sentence kept, and the Q/A lines


def test_a_value_said_after_a_false_initial_is_screened_on_its_own(tmp_path):
    # "gate B." reads as an initial, so the two sentences are one; the second says a value a probe offers
    # and names no listed name: left out, with the sentence it was joined to
    docs = ["We met Mole at gate B. Sun warms the hills. Mole likes tea."] * 3
    probes = [probe("Q: What cools the meadow? A: It is the", "shade", ["sun", "shade"]),
              probe("Q: What does Mole like? A: Mole likes", "tea", ["tea", "milk"])]
    f = write_unit(tmp_path / "gate.jsonl", "gate", docs, probes, ["Mole"])
    counter = iter(range(100))
    _, out = practice.derive(f, lambda: f"nonce{next(counter)}", random.Random(0))
    assert "hills" not in " ".join(out) and sum(d.count("likes tea") for d in out) == 3 + 1


RULES = ["At night a creature that lives in the meadow sleeps. Creatures living in the meadow always sleep after dark.",
         "The dax sleeps every night. The wug lives in the meadow."]


def rule_unit(tmp_path):
    """A unit with a rule whose relation word ("night") is a listed name, and an entity asked in its frame."""
    probes = [dict(probe("Q: What does a creature that lives in the meadow do at night? A: At night a creature that "
                         "lives in the meadow", "sleeps", ["sleeps", "digs"]), cluster="night:meadow"),
              dict(probe("Q: What does the dax do at night? A: At night the dax", "sleeps", ["sleeps", "digs"]),
                   cluster="dax")]
    return write_unit(tmp_path / "rules.jsonl", "rules", RULES, probes, ["night", "dax", "wug"])


def test_a_rule_keyed_on_an_unlisted_word_is_left_out_though_a_listed_word_of_it_is_replaced(tmp_path):
    # "night" replaced leaves "meadow" + "sleeps", the rule itself, in its sentences and its Q/A line; the
    # entity's sentence and Q/A line are about an invented dax, and practise the frame
    counter = iter(range(100))
    _, out = practice.derive(rule_unit(tmp_path), lambda: f"nonce{next(counter)}", random.Random(0))
    said = sorted(s for d in out for s in re.split(r"(?<=\.)\s+", d))
    assert said == ["Q: What does the nonce1 do at nonce0? A: At nonce0 the nonce1 sleeps.",
                    "The nonce1 sleeps every nonce0.", "The nonce2 lives in the meadow."]


def test_support_writes_no_rule_keyed_on_an_unlisted_word_and_its_check_names_one_written(tmp_path, monkeypatch):
    rules = rule_unit(tmp_path)
    practice.support([rules], tmp_path / "ok", log=lambda m: None)
    docs = [json.loads(line)["text"] for line in (tmp_path / "ok" / "practice-rules.jsonl").read_text().splitlines()[1:]]
    said = [s for d in docs for s in re.split(r"(?<=\.)\s+", d)]
    assert [s for s in said if "meadow" in s and "sleep" in s] == []
    assert len(said) == 3 * practice.COPIES and sum("lives in the meadow." in s for s in said) == practice.COPIES
    monkeypatch.setattr(practice, "stating", lambda sentence, facts: None)  # derive's filter off: the check behind it
    with pytest.raises(curriculum.CurriculumError, match=rf"^{rules}:4: leakage: a document states this probe's answer "
                                                         rf"with the rest of its fact \(.*practice-rules.jsonl:\d+: "):
        practice.support([rules], tmp_path / "bad", log=lambda m: None)
    assert not list((tmp_path / "bad").glob("*.jsonl"))


def test_a_name_holding_a_full_stop_keeps_its_sentences(tmp_path):
    """Sentences are split after the names are replaced: "St. Ives" would end a sentence at "St." first."""
    docs = ["Travelers come to St. Ives to buy glass. St. Ives is by the sea. Mossbridge sells pottery."]
    probes = [probe("Q: What does St. Ives sell? A: It sells", "glass", ["glass", "pottery"])]
    f = write_unit(tmp_path / "towns.jsonl", "towns", docs, probes, ["St. Ives", "Mossbridge"])
    counter = iter(range(100))
    _, out = practice.derive(f, lambda: f"nonce{next(counter)}", random.Random(0))
    text = " ".join(out)
    assert "to buy glass." in text and "is by the sea." in text and "sells pottery." in text
    assert "Ives" not in text and "Mossbridge" not in text


def test_a_name_s_plural_in_ies_is_replaced_and_checked(tmp_path):
    docs = ["Mossberries grow only by the lake. The mossberry is sweet. A mossberry's seeds are red."]
    probes = [probe("Q: Where do mossberries grow? A: They grow by the", "lake", ["lake", "hill"])]
    f = write_unit(tmp_path / "berries.jsonl", "berries", docs, probes, ["Mossberry"])
    _, out = practice.derive(f, lambda: "brasko", random.Random(0))
    text = " ".join(out)
    assert "ossberr" not in text.lower()
    assert "Braskos grow only by the lake." in text and "A brasko's seeds are red." in text
    with pytest.raises(curriculum.CurriculumError, match="would still name the listed concept 'mossberries'"):
        practice._check_replaced(f, ["The mossberries are ripe."], ["Mossberry"])


def test_the_example_units_name_every_cluster_in_their_documents_and_list_each(tmp_path):
    # the check is live on them: each cluster is a name their documents use, and a header lists it
    units = [practice.read(f) for f in EXAMPLES]
    for f, (header, docs, probes) in zip(EXAMPLES, units):
        clusters = {p["cluster"] for p in probes}
        assert clusters and all(practice._pattern([c]).search(" ".join(docs)) for c in clusters), f
        practice._check_clusters(f, docs, probes, practice.all_concepts(units))
        with pytest.raises(curriculum.CurriculumError, match=rf"^{re.escape(str(f))}: "):
            practice._check_clusters(f, docs, probes, [c for c in header["concepts"] if c != sorted(clusters)[0]])


def test_one_unit_id_twice_or_one_file_twice_is_refused_before_anything_is_written(ships, tmp_path, capsys):
    # both would write practice-ships.jsonl: the second once overwrote the first, and the move into the
    # directory failed halfway, leaving the primitive text and one practice unit in it
    (tmp_path / "copy").mkdir()
    copy = tmp_path / "copy" / "ships.jsonl"
    copy.write_text(ships.read_text())
    loud = write_unit(tmp_path / "copy" / "loud.jsonl", "SHIPS", ["The Blue Swan is slow."],  # ids name files
                      [probe("Q: How fast is the Blue Swan? A: It is", "slow", ["fast", "slow"])], ["Blue Swan"])
    out = tmp_path / "out"
    for given, refused in [([ships, copy], rf"^{re.escape(str(copy))}: duplicate unit id 'ships' \(also in "
                                           rf"{re.escape(str(ships))}\)"),
                           ([ships, loud], rf"^{re.escape(str(loud))}: duplicate unit id 'SHIPS' "),
                           ([ships, ships], rf"^{re.escape(str(ships))}: given twice")]:
        with pytest.raises(curriculum.CurriculumError, match=refused):
            practice.support(given, out, log=lambda m: None)
        assert not out.exists()
    with pytest.raises(SystemExit) as e:  # the command line: one line, status 2, nothing written
        practice.main([str(ships), str(copy), "--out", str(out)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and "duplicate unit id 'ships'" in err and not out.exists()


def test_a_directory_where_a_support_unit_goes_is_refused_before_any_file_is_moved(ships, tmp_path):
    # a rename cannot replace a directory: checked before the first rename, not found at the last
    out = tmp_path / "out"
    (out / "practice-ships.jsonl").mkdir(parents=True)
    with pytest.raises(curriculum.CurriculumError, match=rf"^{re.escape(str(out / 'practice-ships.jsonl'))}: is a "
                                                         "directory"):
        practice.support([ships], out, log=lambda m: None)
    assert [p.name for p in out.iterdir()] == ["practice-ships.jsonl"] and (out / "practice-ships.jsonl").is_dir()


def test_a_name_whose_casefold_is_longer_is_found_and_replaced_in_any_case_form(tmp_path):
    # "ß" folds to "ss" and "İ" to "i" and a dot: re.IGNORECASE alone never found such a name as written,
    # and its practice was refused as still naming it
    docs = ["Weißdorn is used against cough.", "A WEISSDORN tea soothes a cough.", "The weißdorn's berries are red.",
            "İsot is given for fever.", "The İSOT pepper is hot."]
    probes = [probe("Q: What is Weißdorn used against? A: It is used against", "cough", ["cough", "fever"]),
              probe("Q: What is İsot given for? A: It is given for", "fever", ["cough", "fever"])]
    f = write_unit(tmp_path / "herbs.jsonl", "herbs", docs, probes, ["Weißdorn", "İsot"])
    assert practice._pattern([practice._key("Weißdorn")]).search("Weißdorn tea")["name"] == "Weißdorn"
    assert practice._pattern(["weissdorn"]).sub("#", "WEIẞDORN’s weissdorns Weißdornen") == "# # Weißdornen"
    counter = iter(range(100))
    _, out = practice.derive(f, lambda: f"nonce{next(counter)}", random.Random(0), copies=2)
    text = " ".join(out)
    assert not re.search("wei(ß|ss)dorn|İsot", text, re.IGNORECASE)
    assert len(re.findall(r"A Nonce\d+ tea soothes a cough\.", text)) == 2
    assert len(re.findall(r"The nonce\d+'s berries are red\.", text)) == 2
    assert len(re.findall(r"The Nonce\d+ pepper is hot\.", text)) == 2


def test_no_copies_of_practice_are_refused_before_anything_is_written(ships, tmp_path):
    # practice of no copy is a header alone, which units.py refuses as a unit with no documents
    for copies in (0, -1):
        with pytest.raises(curriculum.CurriculumError, match=rf"^copies of practice must be at least 1, got {copies}"):
            practice.support([ships], tmp_path / "out", copies=copies, log=lambda m: None)
        assert not (tmp_path / "out").exists()


def test_a_unit_id_too_long_for_its_practice_unit_s_id_is_refused_before_anything_is_written(ships, tmp_path):
    # "practice-" and an id of 92 characters pass units.py's limit of 100
    lines = ships.read_text().splitlines()
    for n in (91, 92):
        f = tmp_path / f"ships{n}.jsonl"
        f.write_text("\n".join([json.dumps({**json.loads(lines[0]), "unit": "s" * n})] + lines[1:]) + "\n")
    header, _ = practice.derive(tmp_path / "ships91.jsonl", lambda: "nonce", random.Random(0))
    assert UNIT_ID.fullmatch(header["unit"])  # units.py checks ids with it
    with pytest.raises(curriculum.CurriculumError, match=rf"^{re.escape(str(tmp_path / 'ships92.jsonl'))}: unit id "
                                                         rf"'s{{92}}' is too long .* shorten it to 91 or fewer$"):
        practice.support([tmp_path / "ships92.jsonl"], tmp_path / "out", log=lambda m: None)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("below", ["x", "x/y"])
def test_an_out_below_a_file_is_one_line_naming_it_exit_2_and_nothing_written(ships, tmp_path, capsys, below):
    # /dev/null/x was a NotADirectoryError traceback from mkdir
    mine = tmp_path / "afile"
    mine.write_text("mine")
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(SystemExit) as e:
        practice.main([str(ships), "--out", str(mine / below)])
    assert e.value.code == 2
    assert capsys.readouterr().err == f"error: {mine}: is a file, not a directory, so {mine / below} cannot be made " \
                                      "there\n"
    assert sorted(tmp_path.rglob("*")) == before and mine.read_text() == "mine"


def test_ctrl_c_ends_in_one_line_saying_how_to_go_on_and_leaves_no_support_unit(ships, tmp_path, capsys,
                                                                                 monkeypatch):
    # every unit written and about to be checked: none of them in out yet
    monkeypatch.setattr(practice, "stated_in", ctrl_c)
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("mine")
    with pytest.raises(SystemExit) as e:
        practice.main([str(ships), "--out", str(out)])
    assert e.value.code == 130
    assert capsys.readouterr().err == f"interrupted: run the same command again: {out} holds no half-written " \
                                      "unit, and it writes them all anew\n"
    assert [p.name for p in out.iterdir()] == ["mine.txt"]


def test_in_a_script_without_spaces_a_name_is_replaced_inside_a_run_of_characters(tmp_path):
    """Han text puts no space around a name: practice finds and replaces it wherever it stands, and keeps
    the sentence its invented name now stands in; spaced words keep their edges ("Gull" is not in "Gulls'")."""
    fox = write_unit(tmp_path / "fox.jsonl", "fox", ["山那边的狐狸住在湖里。狐狸很聪明。", "兔子住在山上。"],
                     [probe("Q: 狐狸住在哪里？ A: 它住在", "湖里", ["湖里", "山上"]),
                      probe("Q: 兔子住在哪里？ A: 它住在", "山上", ["湖里", "山上"])], ["狐狸", "兔子"])
    counter = iter(range(100))
    _, docs = practice.derive(fox, lambda: f"nonce{next(counter)}", random.Random(0))
    text = "\n".join(docs)
    assert not re.search("狐狸|兔子", text)
    assert re.search(r"山那边的nonce\d住在湖里。", text) and re.search(r"nonce\d住在山上。", text)
    assert re.search(r"Q: nonce\d住在哪里？ A: 它住在 湖里\.", text)
    assert practice._pattern(["狐狸", "Gull"]).sub("#", "在Gull的狐狸们 Gullish Gulls' 狐狸") == "在#的#们 Gullish # #"
    # sentences joined as each script writes them, each still read alone by the check
    assert practice._joined(["狐狸吃草。", "肥皂很香。", "A b.", "C d."]) == "狐狸吃草。肥皂很香。A b. C d."
    # their characters, which no primitive text uses, go into the register, so that their tokens are trained
    assert practice.new_words([practice.read(fox)], {"q", "a"}) == ["狐狸", "兔子", "湖里", "山上"]
