"""
The unit file format: one JSONL file per unit. The first line is the header

    {"unit": id, "kind": "knowledge"|"primitive", "level": int, "title": str, "concepts": [str],
     "requires": [unit ids], "source": str, "license": str}

and every following line is a document {"text": str} or a probe
{"probe": prompt, "answer": str, "choices": [str], "type": str}. A probe may also name its
"cluster" (str: the fact or entity it rests on, so that a bootstrap can resample probes by
cluster) and its "premises" ([str]: the prompts of the recall probes its answer follows from, asked
by its unit or by a unit it requires, as `curriculum.py add` checks). Files are read streaming, so a
unit of any size is validated in bounded memory; each error names the file and line.
"""
import argparse
import json
import re
import unicodedata
from pathlib import Path

from common import fail, sha256_file, stops_in_one_line

KINDS = ("knowledge", "primitive")
SELECTORS = ("all", "verified", "rejected", "untested") + KINDS  # words a selection reads before unit ids
HEADER_FIELDS = {"unit": str, "kind": str, "level": int, "title": str, "concepts": list,
                 "requires": list, "source": str, "license": str}
UNIT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")  # ids become file names (with room for suffixes)
SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")  # a \uD800-\uDFFF escape: JSON's only way to a lone surrogate
CHUNK_CHARS = 1 << 18  # documents are scanned and tokenized ~256k characters at a time (bounded RAM)


class CurriculumError(ValueError):
    """Bad unit file, corpus or selection; the message names the file (and line) and the problem."""


def normalize(text):
    """Whitespace runs as one space, no leading or trailing space."""
    return " ".join(text.split())


# Format characters (soft hyphen, zero-width space and joiners, direction marks, word joiner, BOM):
# they show nothing, so text that differs from another only by them reads as the other
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff]")


# typographic quotes and dashes an editor substitutes for the keyboard's ("What’s", "well‑known"),
# which NFKC leaves as they are
_TYPOGRAPHIC = str.maketrans({**dict.fromkeys("‘’‚‛′", "'"),
                              **dict.fromkeys("“”„‟″", '"'),
                              **dict.fromkeys("‐‑‒–—―−", "-")})


def as_read(text):
    """text as a reader sees it: compatibility forms (full-width letters, a letter and its combining
    accent) as their plain composed form, typographic quotes and dashes as the keyboard's, invisible
    characters out, whitespace normalized."""
    if not text.isascii():  # (ASCII holds none of them: most text is spared the work)
        text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text)).translate(_TYPOGRAPHIC)
    return normalize(text)


# scripts that put no space between words (Thai, Lao, Myanmar, Khmer, kana, Han): each of their
# characters is a word of its own to the checks, so a name or an answer is found inside a run of them
# (the stated-fact check asks a fact's run to stand whole in a sentence: leakage._words)
UNSPACED = "\u0e01-\u0e3a\u0e40-\u0e4e\u0e81-\u0ecf\u0edc-\u0edf" \
           "\u1000-\u103f\u1050-\u108f\u109a-\u109d\u1780-\u17d3\u17d7\u17dc\u17dd" \
           "\u3005-\u3007\u302a-\u302d\u3031-\u3035\u303b\u303c\u3041-\u3096\u3099\u309a\u309d-\u309f" \
           "\u30a1-\u30fa\u30fc-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f" \
           "\U00020000-\U0003134f"  # their letters and marks: digits and punctuation stay as in spaced text
SPACED = rf"[^\W{UNSPACED}]"  # a word character of a script that spaces its words
WORDS = re.compile(rf"[{UNSPACED}]|{SPACED}+")
# whole words: no edge falls between two word characters of a spaced script ("lake" is not in "lakeside")
WORD_START = rf"(?:(?<!{SPACED})|(?=[{UNSPACED}]))"
WORD_END = rf"(?:(?!{SPACED})|(?<=[{UNSPACED}]))"


def whole_words(text):
    """A regex of the literal text as whole words (WORD_START, WORD_END), written literal first: a scan for
    the literal, its edges checked after it, is several times faster than an edge check at every place."""
    literal = re.escape(text)
    before = "" if re.match(f"[{UNSPACED}]", text) else rf"(?<!{SPACED}{literal})"  # fixed width: the literal
    after = "" if re.search(f"[{UNSPACED}]$", text) else rf"(?!{SPACED})"
    return literal + before + after


_ARTICLE = re.compile(r"^(a|an|the)\s+(?=\S)", re.IGNORECASE)


def without_article(text):
    """text less a leading article ("a florp" -> "florp"): a choice as the documents name it ("each
    florp", "a kind of florp")."""
    return _ARTICLE.sub("", text.strip())


def cluster_of(probe):
    """What a probe rests on: its cluster (a fact or entity), else its own prompt."""
    return probe.get("cluster") or probe["probe"]


def scan_lines(path):
    """Yield (line_no, record) for each non-blank line of a unit file; bad UTF-8 or JSON raises."""
    with open(path, "rb") as f:
        for no, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise CurriculumError(f"{path}:{no}: invalid UTF-8 at byte {e.start}; save the file as UTF-8") from None
            if not line.strip():
                continue
            try:
                rec = json.loads(line.rstrip("\r\n"), parse_constant=_no_constant)  # a column on this line
            except json.JSONDecodeError as e:
                raise CurriculumError(f"{path}:{no}: invalid JSON ({e.msg}, column {e.colno})") from None
            except ValueError as e:  # e.g. an integer past Python's 4300 digits
                raise CurriculumError(f"{path}:{no}: invalid JSON ({e})") from None
            except RecursionError:
                raise CurriculumError(f"{path}:{no}: JSON nested too deeply") from None
            if SURROGATE.search(line):  # a pair is one character; a lone half cannot be written as UTF-8
                try:
                    json.dumps(rec, ensure_ascii=False).encode("utf-8")
                except UnicodeEncodeError:
                    raise CurriculumError(f"{path}:{no}: a \\u escape of half a UTF-16 surrogate pair, "
                                          "which is no character") from None
            if not isinstance(rec, dict):
                raise CurriculumError(f"{path}:{no}: expected a JSON object, got {type(rec).__name__}")
            yield no, rec


def _no_constant(name):
    """NaN, Infinity and -Infinity, which Python's json reads but JSON has not: refused."""
    raise ValueError(f"{name} is not a JSON value")


def check_header(path, no, rec):
    """The header record at path:no, checked field by field; raise CurriculumError naming the problem."""
    where = f"{path}:{no}"
    if "unit" not in rec:
        raise CurriculumError(f"{where}: missing header: the first line must be "
                              '{"unit": id, "kind": ..., "level": ..., "title": ..., "concepts": [...], '
                              '"requires": [...], "source": ..., "license": ...}')
    for key, typ in HEADER_FIELDS.items():
        if key not in rec:
            raise CurriculumError(f"{where}: header is missing field '{key}'")
        v = rec[key]
        if key == "level" and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            raise CurriculumError(f"{where}: level must be a non-negative integer, got {v!r}")
        if not isinstance(v, typ):
            raise CurriculumError(f"{where}: header field '{key}' must be a {typ.__name__}, got {v!r}")
    if not UNIT_ID.fullmatch(rec["unit"]):
        raise CurriculumError(f"{where}: unit id {rec['unit']!r} must be 1-100 letters, digits, '_', '.', '-' "
                              "(it names files)")
    if rec["unit"].lower() in SELECTORS:  # --units knowledge would select every knowledge unit, not this one
        raise CurriculumError(f"{where}: unit id {rec['unit']!r} is a selection's word "
                              f"({', '.join(SELECTORS)}); name the unit otherwise")
    if rec["kind"] not in KINDS:
        raise CurriculumError(f"{where}: unknown kind {rec['kind']!r} (expected 'knowledge' or 'primitive')")
    for key in ("concepts", "requires"):
        if not all(isinstance(x, str) for x in rec[key]):
            raise CurriculumError(f"{where}: header field '{key}' must be a list of strings")
    return rec


def check_probe(path, no, rec, unit):
    """The probe record at path:no as {"probe", "answer", "choices", "type", "unit"}, with its optional
    "cluster" and "premises" when it has them; raise on a bad field."""
    where = f"{path}:{no}"
    for key in ("probe", "answer", "choices", "type"):
        if key not in rec:
            raise CurriculumError(f"{where}: probe is missing field '{key}'")
    # as read: a prompt of invisible characters alone would make every document naming its answer a leak
    if not isinstance(rec["probe"], str) or not as_read(rec["probe"]):
        raise CurriculumError(f"{where}: probe prompt must be a non-empty string")
    ch = rec["choices"]
    if not isinstance(ch, list) or len(ch) < 2 or not all(isinstance(c, str) and as_read(c) for c in ch):
        raise CurriculumError(f"{where}: choices must be a list of at least 2 non-empty strings")
    if not isinstance(rec["type"], str) or not isinstance(rec["answer"], str):
        raise CurriculumError(f"{where}: probe answer and type must be strings")
    if not rec["type"].strip():  # reports group probes by type: a blank one is a row without a name
        raise CurriculumError(f"{where}: probe type must be a non-empty string (recall, or the kind of "
                              f"reasoning it tests), got {rec['type']!r}")
    if rec["answer"] not in ch:
        alike = next((c for c in ch if as_read(c) == as_read(rec["answer"])), None)
        # the answer is found by its exact characters: one that only reads as a choice (a letter and its
        # combining accent against the composed letter) is none of them, which the bare message hides
        raise CurriculumError(f"{where}: answer {rec['answer']!r} is not among its choices {ch}" +
                              (f" ({alike!r} reads the same but is written in other characters: "
                               f"{ascii(alike)} against {ascii(rec['answer'])})" if alike is not None else ""))
    if rec["type"] != rec["type"].strip():  # "recall " would be a type of its own, which no gate reads
        raise CurriculumError(f"{where}: probe type {rec['type']!r} has spaces around it")
    seen = [as_read(c) for c in ch]  # choices a reader cannot tell apart are one option
    if len(set(seen)) < len(seen):  # a repeated choice is one option counted twice: chance would be wrong
        twice = [c for c, s in zip(ch, seen) if seen.count(s) > 1]
        raise CurriculumError(f"{where}: choices repeat {twice[0]!r}" +
                              (f" (as {twice[1]!r}, which reads the same)" if twice[0] != twice[1] else ""))
    spaced = [c for c in ch if c != c.strip()]
    if spaced:  # a choice is scored after " ": " swamp" would read as "  swamp", a space token no text holds
        raise CurriculumError(f"{where}: choice {spaced[0]!r} has spaces around it (each choice is read after "
                              "one space)")
    probe = {"probe": rec["probe"], "answer": rec["answer"], "choices": ch, "type": rec["type"], "unit": unit}
    if "cluster" in rec:
        if not isinstance(rec["cluster"], str) or not rec["cluster"].strip():
            raise CurriculumError(f"{where}: probe cluster must be a non-empty string (the fact or entity the "
                                  f"probe rests on), got {rec['cluster']!r}")
        probe["cluster"] = rec["cluster"]
    if "premises" in rec:
        pr = rec["premises"]
        if not isinstance(pr, list) or not all(isinstance(x, str) and x.strip() for x in pr):
            raise CurriculumError(f"{where}: probe premises must be a list of non-empty strings (the prompts of "
                                  f"the recall probes its answer follows from), got {pr!r}")
        probe["premises"] = pr
    return probe


def iter_records(path):
    """Yield ("header"|"document"|"probe", line_no, value) for a unit file, validating each line."""
    header, prompts = None, {}  # each probe's prompt (as read, in any case) -> its line
    for no, rec in scan_lines(path):
        if header is None:
            header = check_header(path, no, rec)
            yield "header", no, header
        elif "text" in rec and "probe" in rec:
            raise CurriculumError(f"{path}:{no}: line is both a document {{\"text\"}} and a probe {{\"probe\"}}; "
                                  "give each its own line")
        elif "text" in rec:
            if not isinstance(rec["text"], str) or not rec["text"].strip():
                raise CurriculumError(f"{path}:{no}: document text must be a non-empty string")
            yield "document", no, rec["text"]
        elif "probe" in rec:
            probe = check_probe(path, no, rec, header["unit"])
            first = prompts.setdefault(as_read(probe["probe"]).casefold(), no)
            if first != no:  # one question twice would count twice in the gate and in every accuracy
                raise CurriculumError(f"{path}:{no}: probe repeats the prompt of line {first}")
            yield "probe", no, probe
        else:
            raise CurriculumError(f"{path}:{no}: line is neither a document {{\"text\"}} nor a probe {{\"probe\"}}")
    if header is None:
        raise CurriculumError(f"{path}:1: missing header: the file is empty")


def iter_documents(path):
    """Yield (line_no, text) of a unit file's documents, streaming."""
    for what, no, v in iter_records(path):
        if what == "document":
            yield no, v


def inspect_unit(path):
    """Validate one unit file in a single streaming pass: {"path", "header", "line", "n_docs",
    "n_probes", "premises", "sha256"}. The header is kept without its concepts (a unit can name hundreds,
    and a large batch's lists add up); documents, most of a unit's bytes, are only counted, and of the
    probes only their prompts are held while the file is read, to find the premises asked elsewhere.
    premises: [(line, prompt)] of the premises that no probe of this unit asks (another unit's, or none)."""
    path = Path(path)
    if path.is_dir():
        raise CurriculumError(f"{path}: is a directory, not a unit file (.jsonl)")
    if not path.is_file():
        raise CurriculumError(f"{path}: no such unit file")
    info, prompts, premises = {"path": path, "n_probes": 0, "n_docs": 0}, set(), []
    for what, no, v in iter_records(path):
        if what == "header":
            info["header"], info["line"] = {k: x for k, x in v.items() if k != "concepts"}, no
        elif what == "document":
            info["n_docs"] += 1
        else:
            info["n_probes"] += 1
            prompts.add(v["probe"])
            premises += [(no, q) for q in v.get("premises", ())]
    info["premises"] = [(no, q) for no, q in premises if q not in prompts]
    h, where = info["header"], f"{path}:{info['line']}"
    if info["n_docs"] == 0:
        raise CurriculumError(f"{where}: unit '{h['unit']}' has no documents; add {{\"text\": ...}} lines")
    if h["kind"] == "knowledge" and not info["n_probes"]:
        raise CurriculumError(f"{where}: knowledge unit '{h['unit']}' has no probes; add {{\"probe\": ...}} lines")
    info["sha256"] = sha256_file(path)
    return info


def read_unit(path):
    """Validate one unit file and return (header, documents, probes); raise CurriculumError("path:line: problem")."""
    inspect_unit(path)
    header, docs, probes = None, [], []
    for what, _, v in iter_records(path):
        if what == "header":
            header = v
        else:
            (docs if what == "document" else probes).append(v)
    return header, docs, probes


def chunks(items, max_chars=CHUNK_CHARS):
    """Group (line_no, text) items into lists of about max_chars characters."""
    chunk, size = [], 0
    for item in items:
        chunk.append(item)
        size += len(item[1])
        if size >= max_chars:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


@stops_in_one_line("it writes nothing; run it again")
def main(argv=None):
    p = argparse.ArgumentParser(description="Validate unit files (the format is in units.py's docstring) "
                                "and count their documents and probes; exit 2 naming the first bad line.")
    p.add_argument("files", nargs="+", help="unit files (.jsonl) to validate")
    args = p.parse_args(argv)
    for f in args.files:
        try:
            i = inspect_unit(f)
        except CurriculumError as e:
            fail(e)
        print(f"{f}: unit {i['header']['unit']!r} ({i['header']['kind']}, level {i['header']['level']}), "
              f"{i['n_docs']} documents, {i['n_probes']} probes")


if __name__ == "__main__":
    main()
