"""
What a base needs before it can learn a user's own knowledge units, derived from the units:

- the built-in primitive text (simple English, and the built-in world's question frames practised
  on invented creatures), with a register: each of the units' new names mentioned in neutral
  sentences, so that the base has trained their tokens and knows nothing about them;
- practice for the units' own relations and question frames: each unit's documents' sentences, and
  its probes as Q/A lines, with invented names in place of every name any of the units lists (in
  any case, plural or possessive). A sentence that names none of them but says a value a probe offers
  (a rule keyed on a value, "every creature that lives in the meadow sleeps at night") is left out:
  it would state the unit's own fact. So is a sentence or Q/A line that says a probe's answer with what
  replacement leaves of its cluster (that rule with "night" listed: "meadow", "sleeps"), and a sentence
  that says the answer of a probe naming no listed name (its entity is copied as it is). The frames are
  practised on entities no probe asks about, so no fact about a listed name leaks; a base that has
  never answered in a unit's frames stores its facts but cannot say them.

    python practice.py UNITS... --out DIR      # write the support units for these units to DIR
"""

import argparse
import contextlib
import json
import random
import re
import shutil
import sys
import tempfile
from pathlib import Path

from common import atomic_path, check_writable, fail, fsync_dir, interrupted
from leakage import practised_facts, sentences as sentences_of, stated_in, stating
from presets import PRACTICE_COPIES as COPIES  # copies of each unit's practice (presets.py says why so many)
from units import UNIT_ID, UNSPACED, WORD_END, WORD_START, CurriculumError, read_unit as read, without_article

ROOT = Path(__file__).resolve().parent
SOURCE = "derived by accrete practice.py"  # a practice unit's header's source begins so (_made_by_support)
WORD = re.compile(rf"[A-Za-z]+|[{UNSPACED}]")  # a character of a script without spaces is a word


def _world():
    sys.path.insert(0, str(ROOT / "data" / "world"))
    import prepare  # the built-in world's generator: its primitive text and its name generator
    return prepare


# the forms of a name practice replaces: plural (s, es) and possessive ('s, s'), whole words only
FORMS = rf"(?P<plural>e?s)?(?P<possessive>['’]s?)?{WORD_END}"


def _pattern(names, tail=FORMS):
    """A _Pattern for any of the names, in any case and with their words apart by any space, then tail;
    longest first, so that "Silver Gull" is taken whole before "Gull"."""
    keys = sorted(map(_key, names), key=len, reverse=True)
    alternatives = (r"\s+".join([re.escape(w) for w in k.split()[:-1]] + [_last_word(k.split()[-1])]) for k in keys)
    return _Pattern(re.compile(rf"{WORD_START}(?P<name>{'|'.join(alternatives)}){tail}"))


def _last_word(word):
    """A name's last word as a regex: one that ends in a consonant and y also in its plural in -ies
    ("mossberry", "mossberries"), which a plural suffix after the whole word cannot spell."""
    if re.fullmatch(r".*[^aeiou]y", word):
        return rf"{re.escape(word[:-1])}(?:y|ies)"
    return re.escape(word)


def _singular(key):
    """(the listed name's key, whether the text had its -ies plural) for a matched name's key."""
    return (key[:-3] + "y", True) if key.endswith("ies") else (key, False)


def _key(name):
    """A name as practice matches it: case and spacing aside. Casefolded, not lowercased: "Weißdorn" and
    "WEISSDORN" are one name ("weissdorn")."""
    return " ".join(name.casefold().split())


def _fold(text):
    """text casefolded, and {index in it: index in text} where each of text's characters starts, and at the end."""
    if text.isascii():  # one character each way: the positions are the same (a range, as quick as a dict)
        return text.lower(), range(len(text) + 1)
    parts, edge, n = [], {}, 0
    for i, ch in enumerate(text):
        edge[n] = i
        parts.append(ch.casefold())
        n += len(parts[-1])
    edge[n] = len(text)
    return "".join(parts), edge


class _Pattern:
    """A regex of casefolded names, run on the text casefolded: re.IGNORECASE compares one character with
    one, so it never finds "weissdorn" (the key of "Weißdorn") in "Weißdorn". Matches come back as the
    text spells them: search -> {group: its words in the text, or None}; sub(repl, text) with repl a
    plain string or a function of those groups."""

    def __init__(self, regex):
        self.regex = regex

    def matches(self, text):
        """(start, end, groups) in text of each match. A match that would split one of text's characters
        (a name "weis" in "Weiß", folded "weiss") is none: the search goes on from the next character."""
        folded, edge = _fold(text)
        pos = 0
        while m := self.regex.search(folded, pos):
            spans = {g: m.span(g) for g in m.groupdict() if m.span(g) != (-1, -1)}
            if all(s in edge and e in edge for s, e in [m.span(), *spans.values()]):
                groups = dict.fromkeys(m.groupdict()) | {g: text[edge[s]:edge[e]] for g, (s, e) in spans.items()}
                yield edge[m.start()], edge[m.end()], groups
                pos = max(m.end(), m.start() + 1)  # on after it, as re.finditer (an empty match: one on)
            else:
                pos = m.start() + 1

    def search(self, text):
        return next((groups for _, _, groups in self.matches(text)), None)

    def sub(self, repl, text):
        out, last = [], 0
        for start, end, groups in self.matches(text):
            out += [text[last:start], repl(groups) if callable(repl) else repl]
            last = end
        return "".join(out) + text[last:]


def _named(concepts, text):
    """The concepts that text names in any case or form, each once, longest first. Ties in length keep
    the order given, so the practice and the register do not change with Python's hash seed."""
    found = [c for c in concepts if c.strip() and _pattern([c]).search(text)]
    return sorted(dict.fromkeys(found), key=len, reverse=True)


def names_asked(header, probes, concepts=()):
    """The concepts that its probes ask about (in a prompt or as an answer), longest first. The
    header's own, and the other `concepts` given: those of the units beside it, since a unit may ask
    about names an earlier unit introduced (a creature's kind, say)."""
    return _named(list(header["concepts"]) + list(concepts), " ".join(p["probe"] + " " + p["answer"] for p in probes))


def all_concepts(units):
    """Every concept the units' headers list, in order: names one unit may ask about and another list."""
    return [c for header, _, _ in units for c in header["concepts"]]


def new_words(units, known):
    """The names and answer words of the units that the primitive text never uses (its vocabulary
    `known`, lowercased): what the register must mention so that their tokens are trained."""
    out, concepts = [], all_concepts(units)
    for header, _, probes in units:
        candidates = names_asked(header, probes, concepts) + [c for p in probes for c in p["choices"]]
        for c in candidates:
            if any(w.lower() not in known for w in WORD.findall(c)) and c not in out:
                out.append(c)
    return out


def _plural(word):
    return word + ("es" if word.endswith(("s", "x", "z", "ch", "sh")) else "s")


def _substitute(text, mapping, pattern):
    """text with each name of pattern replaced by its invented words (mapping, by _key), cased as the
    words they replace ("Moonwort" at a sentence's start -> "Brasko") and in the same form."""
    def invented(m):
        said = m["name"].split()
        key = _key(m["name"])
        key, ies = (key, False) if key in mapping else _singular(key)
        new = " ".join(w.capitalize() if s[:1].isupper() else w for w, s in zip(mapping[key], said))
        return (_plural(new) if m["plural"] or ies else new) + (m["possessive"] or "")
    return pattern.sub(invented, text)


def derive(path, fresh, rng, copies=1, concepts=()):
    """A primitive unit of practice for the knowledge unit at path: its documents' sentences, shuffled
    across documents, and its probes as Q/A lines, with every name it mentions that its header or the
    other units' `concepts` list replaced by an invented one (fresh() -> a new word) in any case and
    form; `copies` times, each with names of its own. Probes that name none of them are left out, and so
    are sentences that name none but say a value a probe offers, sentences that say the answer of a probe
    naming none, and sentences and Q/A lines that state a probe's fact by what replacement leaves of it
    (leakage.practised_facts): they would state the unit's own facts (a rule keyed on a value) in the
    base's primitive text."""
    header, docs, probes = read(path)
    if header["kind"] != "knowledge":
        raise CurriculumError(f"{path}: a {header['kind']} unit; practice is derived from knowledge units alone (give "
                              "primitive units to the ladder with --primitive)")
    if not names_asked(header, probes, concepts):
        raise CurriculumError(f"{path}: none of the header's concepts appears in its probes, so practice cannot "
                              "replace them; list the names the probes ask about in \"concepts\"")
    listed = list(header["concepts"]) + list(concepts)
    _check_clusters(path, docs, probes, listed)
    # not only the names its probes ask about: a name another unit lists carries that unit's facts
    text = " ".join(docs + [p["probe"] + " " + p["answer"] for p in probes])
    names = list(dict.fromkeys(map(_key, _named(listed, text))))
    pattern = _pattern(names)
    sentences, qa = [], []
    # a sentence that names no listed name and says a value a probe offers states a fact of the unit's own
    # (a rule keyed on a value); one that says neither is framing ("Here is what the healers teach.")
    offered = [c for p in probes for c in p["choices"] if c.strip()]
    values = _pattern(offered, tail=WORD_END) if offered else None
    # a probe that names no listed name keeps its entity in practice, where no cluster may name it: a
    # sentence saying its answer in any form, even beside an invented name, can state its fact ("Bob,
    # who came from <invented>, is the best of the bakers")
    unasked = [without_article(p["answer"]) for p in probes
               if p["answer"].strip() and not pattern.search(p["probe"] + " " + p["answer"])]
    kept_whole = _pattern(unasked) if unasked else None
    # an invented name in a sentence does not make it about an invented entity: with "night" listed, a
    # rule keeps its key and value ("At <invented> a creature that lives in the meadow sleeps")
    facts = practised_facts(path, listed)
    for _ in range(copies):
        mapping = {n: [fresh() for _ in n.split()] for n in names}
        # substituted first, then split: a name may hold a full stop ("St. Ives")
        invented = re.compile(WORD_START + "(?:" + "|".join(re.escape(w) for ws in mapping.values() for w in ws) + r")",
                              re.IGNORECASE)
        sentences += [s for d in docs for s in sentences_of(_substitute(d, mapping, pattern), question=True)
                      if s and _kept(s, invented, values, kept_whole, facts)]
        lines = (f"{_substitute(p['probe'], mapping, pattern)} {_substitute(p['answer'], mapping, pattern)}."
                 for p in probes if pattern.search(p["probe"] + " " + p["answer"]))
        qa += [line for line in lines if not stating(line, facts)]
    rng.shuffle(sentences)
    rng.shuffle(qa)
    out = [_joined(group) for group in _groups(rng, sentences)] + [_joined(group) for group in _groups(rng, qa)]
    rng.shuffle(out)
    _check_replaced(path, out, listed)
    practice = {"unit": _practice_id(header["unit"]), "kind": "primitive", "level": 0,
                "title": f"Practice for {header['unit']}: its statements and questions about "
                         f"{copies} x {len(names)} invented names", "concepts": ["practice"], "requires": [],
                "source": f"{SOURCE} from {Path(path).name}", "license": header["license"]}
    return practice, out


def _kept(sentence, invented, values, kept_whole, facts):
    """Whether practice keeps a sentence (derive says why each rule): each part of it that a split at every
    full stop makes names an invented name or says no offered value (a false initial joins two sentences:
    "We met <invented> at gate B. Shade cools the meadow."); it says no answer of a probe that names no
    listed name; it states no probe's fact."""
    parts = re.split(r"(?<=[.!?])\s+", sentence)
    return all(invented.search(s) or not (values and values.search(s)) for s in parts) \
        and not (kept_whole and kept_whole.search(sentence)) and not stating(sentence, facts)


def _joined(pieces):
    """Sentences as one document, so that the check after derive (leakage.sentences) reads each as derive
    screened it: two it reads as two side by side where a full-width stop ends the first (as Han text is
    written), else with a space between, else a line end ("Who is Dr. <invented>?", a heading)."""
    out = pieces[:1]
    for before, piece in zip(pieces, pieces[1:]):
        out += [next((sep for sep in ("", " ") if sentences_of(before + sep + piece) == [before, piece]), "\n"), piece]
    return "".join(out)


def _check_clusters(path, docs, probes, listed):
    """Raise CurriculumError if a probe's `cluster` is a name its documents use, in any case or form, where
    no listed concept replaces it: practice would copy that entity's sentences unchanged, and the base
    would pretrain on the facts its adapter is then tested on. A cluster the documents never name (a
    fact's label) passes."""
    names = [c for c in listed if c.strip()]
    texts = [_pattern(names).sub("#", d) for d in docs] if names else docs  # "#": what replacement leaves
    for cluster in dict.fromkeys(p["cluster"] for p in probes if isinstance(p.get("cluster"), str)):
        if cluster.strip() and any(_pattern([cluster]).search(t) for t in texts):
            raise CurriculumError(f"{path}: its documents name the probes' cluster {cluster!r}, which no unit's "
                                  "\"concepts\" lists, so practice would copy its facts into the base's primitive "
                                  "text; list it in \"concepts\"")


def _check_replaced(path, docs, listed):
    """Raise CurriculumError if practice still names a listed concept, in any case or form (an invented
    name equal to one, or a form the substitution missed): practice is primitive text the base
    pretrains on, and the name would carry its facts there."""
    left = _pattern([c for c in listed if c.strip()]).search(" ".join(docs))
    if left:
        raise CurriculumError(f"{path}: its practice would still name the listed concept {left['name']!r}, which "
                              "would carry the unit's facts into the base's primitive text")


def _practice_id(uid):
    return f"practice-{uid}"


def _check_units(files, units):
    """Raise CurriculumError, before anything is written, where their practice units could not be written
    side by side: one file or one unit id twice (ignoring case, as curriculum.py does: ids name files,
    and some file systems ignore case), or an id too long to take its practice unit's prefix."""
    seen = {}
    for f, (header, _, _) in zip(files, units):
        uid, first = header["unit"], seen.get(header["unit"].lower())
        if first is not None and Path(first).resolve() == Path(f).resolve():
            raise CurriculumError(f"{f}: given twice (also as {first}); give each unit file once")
        if first is not None:
            raise CurriculumError(f"{f}: duplicate unit id {uid!r} (also in {first}); give each unit its own id")
        seen[uid.lower()] = f
        # refused, not shortened: a shortened id could equal another unit's and would hide which unit it
        # practises, and an id of 92-100 characters is rare and the user's to shorten
        if not UNIT_ID.fullmatch(_practice_id(uid)):
            raise CurriculumError(f"{f}: unit id {uid!r} is too long for its practice unit's id "
                                  f"{_practice_id(uid)!r} (100 characters at most); shorten it to "
                                  f"{100 - len(_practice_id(''))} or fewer")


def _place(written, out_dir):
    """Move the files written into out_dir, checked first for what would make a rename fail, so that a
    failure cannot leave some of them moved: two with one name, or a directory where one goes."""
    names = [f.name for f in written]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise CurriculumError(f"{out_dir / twice[0]}: two support units would be written there")
    for f in written:
        if (out_dir / f.name).is_dir() and not (out_dir / f.name).is_symlink():
            raise CurriculumError(f"{out_dir / f.name}: is a directory, where the support unit {f.name} goes")
    stale = sorted(f for f in out_dir.glob("*.jsonl") if f.name not in names and _made_by_support(f))
    if stale:  # from units given before and not now: a corpus made of out_dir would take it in beside these
        raise CurriculumError(f"{stale[0]}: a support unit written here before (for units not given now), which "
                              f"these would not replace; write them to a new directory, or remove it first")
    return [f.replace(out_dir / f.name) for f in written]


def _made_by_support(path):
    """Whether the unit file at path is one support() writes (practice, or the built-in primitive text),
    by its header's source; a file of the user's, or none that reads as a unit, is not."""
    try:
        with open(path, encoding="utf-8") as f:
            source = json.loads(f.readline()).get("source", "")
    except (OSError, ValueError, AttributeError):
        return False
    return isinstance(source, str) and source.startswith((SOURCE, "accrete data/world/prepare.py"))


def _groups(rng, items):
    i = 0
    while i < len(items):
        n = rng.randint(3, 6)
        yield items[i:i + n]
        i += n


def write(path, header, docs):
    """Write a unit file atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for rec in [header] + [{"text": d} for d in docs]:
            f.write(json.dumps(rec) + "\n")
    return path


def support(files, out_dir, seed=0, copies=COPIES, log=print):
    """Write, for the knowledge unit files given, the built-in primitive units (with a register of
    the units' new names) and a practice unit per knowledge unit into out_dir; return their paths.
    Everything is written and checked in a temporary directory inside out_dir and moved into place
    only then: a failure anywhere, the primitive text's included, leaves out_dir as it was."""
    if copies < 1:  # else each practice unit would be a header alone, which units.py refuses
        raise CurriculumError(f"copies of practice must be at least 1, got {copies}: with none, it has no documents")
    prepare, out_dir = _world(), Path(out_dir)
    check_writable(out_dir, "directory")  # a file in its place or above it: refused before anything is made
    if any(Path(f).resolve().parent == out_dir.resolve() for f in files):
        raise CurriculumError(f"{out_dir}: holds the units given; write their support units to another directory")
    units = [read(f) for f in files]
    _check_units(files, units)
    made = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    work, placed = Path(tempfile.mkdtemp(prefix=".practice-", dir=out_dir)), []  # inside: a rename, never a copy
    try:
        placed = _place(_build(prepare, files, units, work, seed, copies, log), out_dir)
        fsync_dir(out_dir)  # the renames survive a power cut, as atomic_path's do
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if made and not placed:
            with contextlib.suppress(OSError):
                out_dir.rmdir()  # the directory this call made, if nothing else is in it
    return placed


def _build(prepare, files, units, work, seed, copies, log):
    """Write the support units for units (read from files) into the directory work; return their paths."""
    known = primitive_words(prepare, work / "vocabulary", seed)
    register, concepts = new_words(units, known), all_concepts(units)
    names = prepare.Names(random.Random(f"accrete-practice:{seed}"))
    # an invented name that equals a listed one would put that name back into the practice
    names.used |= known | {w.lower() for w in register} | {w.lower() for c in concepts for w in c.split()}
    derived = [derive(f, names.new, random.Random(f"accrete-practice:{seed}:{header['unit']}"), copies, concepts)
               for f, (header, _, _) in zip(files, units)]
    written = prepare.generate(work, seed, register=register)
    log(f"    added the built-in primitive text ({len(written)} units), mentioning {len(register)} new names "
        "and words of your units in neutral sentences")
    for (header, _, _), (unit, docs) in zip(units, derived):
        written.append(write(work / f"{unit['unit']}.jsonl", unit, docs))
        log(f"    added {unit['unit']}: {len(docs)} documents practising the statements and questions of "
            f"{header['unit']} on invented names")
    # practice is made from the units' own probes: it must not state what a derived probe holds out, nor
    # any probe's fact by what replacing the listed names leaves of it
    stated_in(files, written, replaced=concepts)
    return written


def primitive_words(prepare, tmp_dir, seed):
    """The words of the built-in primitive text (lower case), from a copy written to tmp_dir and removed."""
    files = prepare.generate(tmp_dir, seed, register=[])
    try:
        return {w.lower() for f in files for w in WORD.findall(f.read_text())}
    finally:
        for f in files:
            f.unlink()
        tmp_dir.rmdir()


def main(argv=None):
    p = argparse.ArgumentParser(description="Write the units a base needs to learn your own knowledge units: the "
                                "built-in primitive text with a register of your new names, and practice "
                                "derived from each unit.")
    p.add_argument("units", nargs="+", help="your knowledge unit files (.jsonl)")
    p.add_argument("--out", required=True, help="the directory to write the support units to")
    p.add_argument("--seed", type=int, default=0, help="the seed of the primitive text and the invented names "
                   "(default: %(default)s)")
    p.add_argument("--copies", type=int, default=COPIES, help="copies of each unit's practice, each on invented names "
                   "of its own (default: %(default)s)")
    args = p.parse_args(argv)
    try:
        support([Path(u) for u in args.units], args.out, args.seed, args.copies)
    except (ValueError, FileNotFoundError) as e:
        fail(e)
    except KeyboardInterrupt:  # support moves its units into --out only once all are written and checked
        interrupted(f"run the same command again: {args.out} holds no half-written unit, and it writes them all anew")


if __name__ == "__main__":
    main()
