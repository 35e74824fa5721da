"""
The leakage checks. A probe's prompt + answer that appears in any document is an error, since the
probe would then test copying, not knowledge: near-verbatim, as a reader sees it (case, spacing,
invisible characters and the Q:/A: markers aside, _fold), and as the probe's lead + answer where
the lead names its entity ("The luklirk lives in the lake"); both as whole words (_whole: answer
"lake" is not in "lakeside"). Every K-byte window of the documents is hashed in one rolling pass
and looked up among the probes' hashes, and a match is confirmed byte for byte against the probe
re-read from its file. And a derived probe (one that names the `premises` it follows from and the
entity it is about, its `cluster`) must not find its answer stated about that entity: no sentence
of a document may hold both (stated_in). In practice text, whose listed names are invented ones, no
probe may: not even a recall probe whose cluster is a rule's key ("meadow" of "night:meadow").
"""
import argparse
import re

import numpy as np

from common import fail, stops_in_one_line
from units import SPACED, UNSPACED, WORDS, CurriculumError, as_read, chunks, inspect_unit, iter_documents, \
    iter_records, normalize, scan_lines, without_article

LEAK_BUDGET = 1 << 22  # probe needles the leakage check holds at once; more take more passes
NEEDLES = 2  # needles a probe gives at most (_needle_bytes)

_P = 1099511628211  # odd, so it has an inverse mod 2^64
_P_INV = pow(_P, -1, 1 << 64)
_POW = {}  # base -> cached powers base^i mod 2^64


def _powers(base, n):
    if base not in _POW or len(_POW[base]) < n:
        p = np.full(1 << max(n - 1, 1 << 16).bit_length(), base, np.uint64)  # next power of two: few regrowths
        p[0] = 1
        _POW[base] = np.cumprod(p)  # uint64 arithmetic wraps: exactly mod 2^64
    return _POW[base][:n]


def _prefix_hashes(buf):
    """h[i] = sum_{j<i} buf[j] * P^j mod 2^64: the hash of buf[s:e] is (h[e] - h[s]) * P^-s."""
    h = np.zeros(len(buf) + 1, np.uint64)
    np.cumsum(np.frombuffer(buf, np.uint8) * _powers(_P, len(buf)), out=h[1:])
    return h


def _span_hashes(h, starts, ends):
    """Hashes of the spans [starts, ends) of the buffer whose prefix hashes are h, vectorized."""
    return (h[ends] - h[starts]) * _powers(_P_INV, int(starts.max(initial=0)) + 1)[starts]


# a question's and an answer's markers (case folded), not in a word; the letter first, and the
# look-behind after it, is three times faster than the look-behind first
_MARKER = re.compile(rf"[qa](?<!{SPACED}[qa]):")
_LEAD = re.compile(rf"[aA](?<!{SPACED}[aA]):")  # where a prompt's lead begins


def _fold(text):
    """text as the leakage check compares it: as a reader sees it (compatibility forms such as
    full-width letters as their plain letters, invisible characters out), in any case, without Q:
    and A: markers (a question and its answer give the answer away with them or without) and with
    whitespace normalized."""
    text = as_read(text).casefold()
    if "q:" in text or "a:" in text:  # the regex is slow on text that holds none
        text = _MARKER.sub(" ", text)
    return normalize(text)


def _lead(probe):
    """The probe's lead (its prompt after its last "A:") where it names the probe's cluster, folded;
    else None. "The luklirk lives in the" + "lake" states the fact about the luklirk wherever it
    stands; a lead that names no entity ("It is known for") + answer may be about any other, and
    practice writes such lines about invented names."""
    parts, cluster = _LEAD.split(probe["probe"]), probe.get("cluster")
    if len(parts) < 2 or not isinstance(cluster, str):
        return None
    lead = _fold(parts[-1])
    named = " ".join(WORDS.findall(_fold(cluster)))
    return lead if named and f" {named} " in " " + " ".join(WORDS.findall(lead)) + " " else None


_SPACED = re.compile(SPACED)


def _whole(buf, start, end):
    """Whether the needle at buf[start:end] (UTF-8) stands there as whole words: a word character at
    either of its ends must not run on into one of the text's, as answer "4" does in "has 45 teeth"
    or "lake" in "lakeside" (another word, not the answer); in a script without spaces each character
    is a word (units.WORDS), so none runs on."""
    def word(data, at):  # the character at index at (0: first, -1: last) of data is a spaced script's word character
        text = data.decode("utf-8", "ignore")  # 4 bytes hold a character whole; the cut ones around it go
        return bool(text) and _SPACED.match(text[at]) is not None  # none at the buffer's edges
    joined_before = word(buf[max(start - 4, 0):start], -1) and word(buf[start:start + 4], 0)
    joined_after = word(buf[max(end - 4, 0):end], -1) and word(buf[end:end + 4], 0)
    return not (joined_before or joined_after)


def _needle_bytes(probe):
    """What a probe must not find in any document, folded (_fold), without repeats: its prompt (or
    its lead, _lead, which ends every text that holds the whole prompt) + " " + answer, and + answer."""
    prompt = _lead(probe) or probe["probe"]
    return list(dict.fromkeys(_fold(prompt + sep + probe["answer"]).encode() for sep in (" ", "")))


class LeakFinder:
    """Finds probe needles (_needle_bytes) in documents in one pass: the hash of every K-byte window
    is looked up among the needles' K-byte suffix hashes, which give the lengths of the needles that
    may end there; the span of each such length is hashed once and looked up among the needles'
    whole hashes, and a match is confirmed byte for byte against the probe re-read from its file.
    Probes that end alike (practice's "A: It is known for" + " glassblowing") share a suffix and
    often a length: the work a window takes grows with their lengths, never with their count.

    A needle is held as 16 bytes, not as text: the whole needle's hash with its probe's row (the
    probe's line, counted on over all files) in its low bits (8), and its suffix hash with its
    length in the low 16 bits (8; the table keeps one of each), in two sorted tables, behind a
    filter of 2-4 bytes a needle: a large world has millions of needles, and as Python objects (with
    their probe records) they would be most of what add holds. Needles shorter than K bytes or
    longer than 65,535 are rare and kept as bytes."""
    K = 12  # a lead + answer can be short ("the mefor hums", 14 bytes): shorter needles are searched one by one
    # Keys are window hashes times an odd constant (a bijection: equal stays equal). The rolling
    # hash alone is sum(byte_j * P^j) with P = 2^40 + 435: windows that differ only in their first
    # bytes differ only in its low bits, and the filter and the sorted keys look at the top bits.
    MIX = np.uint64(0x9E3779B97F4A7C15)
    MIX2 = np.uint64(0xD6E8FEB86659FD93)  # the filter's second bit: another odd constant
    LENGTH = np.uint64(0xFFFF)  # the low bits of a suffix key: the needle's length
    PAIRS = 1 << 20  # (window, needle length) pairs hashed at once: bounded memory, however many

    def __init__(self, capacity=0):
        """capacity: the needles add() will be given (NEEDLES a probe, at most), if known: the table
        is then allocated once. Grown piece by piece, the small arrays fragment the heap, which then
        holds far more than the needles."""
        self.files, self.new, self.first_row, self.odd, self.n = [], [], [0], [], 0
        self.cols = {"suffix": np.empty(capacity, np.uint64), "full": np.empty(capacity, np.uint64),
                     "row": np.empty(capacity, np.uint32)}

    @classmethod
    def hash_needles(cls, probes):
        """The needles of probes [(line_no, probe)] as arrays (and the odd ones as bytes), to add()."""
        needles, lines, odd = [], [], []
        for no, p in probes:
            for nb in _needle_bytes(p):
                if cls.K <= len(nb) < 1 << 16:
                    needles.append(nb)
                    lines.append(no)
                else:
                    odd.append((nb, no))
        lengths = np.array([len(nb) for nb in needles], np.int64)
        ends = np.cumsum(lengths + 1) - 1  # the needles joined by b"\n"
        h = _prefix_hashes(b"\n".join(needles))
        suffix = _span_hashes(h, ends - cls.K, ends) * cls.MIX & ~cls.LENGTH | lengths.astype(np.uint64)
        return dict(suffix=suffix, full=_span_hashes(h, ends - lengths, ends) * cls.MIX,
                    line=np.array(lines, np.uint32)), odd

    def add(self, path, hashed, new):
        """Take the needles (from hash_needles) of the unit file at path; with new False they are
        found only in documents scanned with new_only False."""
        f, (cols, odd), first = len(self.files), hashed, self.first_row[-1]
        self.files.append(path)
        self.new.append(new)
        self.odd += [(nb, f, no) for nb, no in odd]
        line = cols.pop("line")
        self.first_row.append(first + max([int(line.max(initial=0))] + [no for _, no in odd]) + 1)
        cols["row"] = line.astype(np.uint64) + np.uint64(first)
        if self.first_row[-1] > 1 << 32 and self.cols["row"].dtype == np.uint32:  # 4 bytes while rows fit
            self.cols["row"] = self.cols["row"].astype(np.uint64)
        n, self.n = self.n, self.n + len(line)
        for k, v in cols.items():
            if len(self.cols[k]) < self.n:  # past the capacity: grow by half, at least
                grown = np.empty(max(self.n, len(self.cols[k]) * 3 // 2), self.cols[k].dtype)
                grown[:n] = self.cols[k][:n]
                self.cols[k] = grown
            self.cols[k][n:self.n] = v

    def freeze(self):
        """Build the filter and sort the tables (in place, a slice at a time); call after the last add."""
        n, step = self.n, 1 << 18
        suffix, full, row = (self.cols.pop(k)[:n] for k in ("suffix", "full", "row"))
        # a first filter: two bits set per needle, from its suffix hash, in 16-32 bits per needle; a
        # window goes on to the binary search only if both its bits are set (~1% of them, or fewer).
        # A filter of one bit a needle and a fixed size lets a large share of all windows through
        # once the needles are many, and the binary search then dominates.
        self.bits = min(max(n.bit_length() + 4, 20), 32)
        self.bitmap = np.zeros(1 << (self.bits - 3), np.uint8)
        for i in range(0, n, step):
            for at in self._bits_of(suffix[i:i + step]):
                np.bitwise_or.at(self.bitmap, at >> np.uint64(3), (1 << (at & np.uint64(7))).astype(np.uint8))
        # the rows in the whole hashes' low bits, so that a match names its probe without an argsort
        # (8 bytes a needle) or a gathered column: a hash is only a screen (matches are confirmed),
        # and its other bits will do
        self.rows = np.uint64((1 << max(int(self.first_row[-1]) - 1, 1).bit_length()) - 1)
        for i in range(0, n, step):
            full[i:i + step] &= ~self.rows
            full[i:i + step] |= row[i:i + step]
        del row
        full.sort()
        self.needles = full
        # each (suffix, length) once: a window's candidates are the lengths of the needles that end like it
        suffix.sort()
        m = 0
        for i in range(0, n, step):
            part = suffix[i:i + step]
            kept = part[np.r_[i == 0 or part[0] != suffix[m - 1], part[1:] != part[:-1]]]
            suffix[m:m + len(kept)] = kept
            m += len(kept)
        self.suffixes = suffix[:m]
        self.first_row, self.new = np.array(self.first_row, np.uint64), np.array(self.new)
        return self

    def _bits_of(self, hashes):
        """The filter's two bit positions for each suffix hash (its length bits aside): its top `bits`
        bits, and those of its product with another odd constant."""
        shift, top = np.uint64(64 - self.bits), hashes & ~self.LENGTH
        return top >> shift, (top * self.MIX2) >> shift

    @classmethod
    def window_hashes(cls, h):
        """The hash of every K-byte window of the buffer whose prefix hashes are h, in order."""
        win = (h[cls.K:] - h[:-cls.K]) * _powers(_P_INV, len(h) - cls.K)
        win *= cls.MIX
        return win

    def _may_hold(self, hashes):
        """False where no needle's suffix hash can be among these hashes."""
        first, second = ((self.bitmap[at >> np.uint64(3)] >> (at & np.uint64(7)).astype(np.uint8)) & 1
                         for at in self._bits_of(hashes))
        return (first & second) == 1

    def _where(self, f, no):
        return f"{self.files[f]}:{no}"

    def _confirm(self, f, no, span):
        """Whether span is, byte for byte, a needle of the probe at line no of file f (read again)."""
        for no2, rec in scan_lines(self.files[f]):
            if no2 == no:
                return span in _needle_bytes(rec)
        return False

    def _spans(self, h, ends, lo, hi):
        """Yield (starts, ends, their needle keys) of the spans that end at `ends` (the candidate
        windows' ends, in order) with the length of a needle that ends like the window (suffixes
        lo:hi), in the text's order, at most PAIRS at a time."""
        count = hi - lo
        total = np.cumsum(count)
        i = 0
        while i < len(count):
            j = max(int(np.searchsorted(total, total[i] - count[i] + self.PAIRS, "right")), i + 1)
            c = count[i:j]
            g = np.repeat(lo[i:j], c) + np.arange(int(c.sum())) - np.repeat(np.cumsum(c) - c, c)
            end, length = np.repeat(ends[i:j], c), (self.suffixes[g] & self.LENGTH).astype(np.int64)
            end, length = end[length <= end], length[length <= end]
            yield end - length, end, _span_hashes(h, end - length, end) * self.MIX & ~self.rows
            i = j

    def find(self, buf, new_only=False):
        """(probe location, byte offset) of a needle found in buf as whole words (_whole), or None."""
        for nb, f, no in self.odd:
            i = buf.find(nb) if self.new[f] or not new_only else -1
            while i >= 0 and not _whole(buf, i, i + len(nb)):
                i = buf.find(nb, i + 1)
            if i >= 0:
                return self._where(f, no), i
        if self.n == 0 or len(buf) < self.K:
            return None
        h = _prefix_hashes(buf)
        win = self.window_hashes(h)
        cand = np.nonzero(self._may_hold(win))[0]
        # the tables are sorted once: a binary search per candidate, never a sort per chunk (np.isin
        # sorts both sides on every call)
        top = win[cand] & ~self.LENGTH
        lo, hi = np.searchsorted(self.suffixes, top, "left"), np.searchsorted(self.suffixes, top | self.LENGTH, "right")
        ends = (cand + self.K)[hi > lo]
        for start, end, key in self._spans(h, ends, lo[hi > lo], hi[hi > lo]):
            a, b = np.searchsorted(self.needles, key, "left"), np.searchsorted(self.needles, key | self.rows, "right")
            for j in np.nonzero(b > a)[0]:  # in the text's order
                for row in (self.needles[a[j]:b[j]] & self.rows).tolist():
                    f = int(np.searchsorted(self.first_row, row, "right")) - 1
                    no = row - int(self.first_row[f])
                    if ((self.new[f] or not new_only) and _whole(buf, int(start[j]), int(end[j]))
                            and self._confirm(f, no, buf[start[j]:end[j]])):
                        return self._where(f, no), int(start[j])
        return None

    def scan(self, path, new_only=False):
        """Raise CurriculumError if any document of the unit file at path contains a needle."""
        for chunk in chunks(iter_documents(path)):
            docs = [_fold(t).encode() for _, t in chunk]
            buf = b"\n".join(docs)  # folded needles hold no newline, so matches never cross documents
            hit = self.find(buf, new_only)
            if hit:
                starts = np.cumsum([0] + [len(d) + 1 for d in docs])
                doc_line = chunk[int(np.searchsorted(starts, hit[1], side="right")) - 1][0]
                raise CurriculumError(f"{hit[0]}: leakage: the probe's prompt (or its lead) + answer appears in a "
                                      f"document ({path}:{doc_line}), case, spacing and Q:/A: markers aside; "
                                      "rephrase the probe or the document")


def check_budget(budget):
    """Refuse (CurriculumError) a leak budget below 1: no needle could be held at once."""
    if budget is not None and budget < 1:
        raise CurriculumError(f"leak budget {budget}: it must be at least 1 (needles held at once)")


def check_leakage(new, old=(), budget=None):
    """No new probe's needle in any document, old or new; old probes need only the new documents.
    new, old: [(unit file, probe count)] of the units being added and of those already in the corpus.

    At most `budget` needles (LEAK_BUDGET; 20-24 bytes each, filter included, 18-20 once sorted) are
    held at a time, whole units at a time: past that the probes are taken in batches, each with a
    pass over the documents it can leak into, so a corpus that outgrows the budget costs passes,
    never memory."""
    budget = budget or LEAK_BUDGET
    new_docs, old_docs = [p for p, _ in new], [p for p, _ in old]
    sources = [(p, True, NEEDLES * n) for p, n in new]
    sources += [(p, False, NEEDLES * n) for p, n in old]
    sources = [s for s in sources if s[2]]  # (a unit of no probes is only scanned)
    if not sources:
        return
    batches, n = [[]], 0
    for src in sources:  # in order: the new probes first, so the first batches scan the old documents
        if batches[-1] and n + src[2] > budget:
            batches.append([])
            n = 0
        batches[-1].append(src)
        n += src[2]
    for batch in batches:
        finder = LeakFinder(sum(k for _, _, k in batch))
        for path, is_new, _ in batch:
            probes = ((no, p) for what, no, p in iter_records(path) if what == "probe")
            finder.add(path, LeakFinder.hash_needles(probes), new=is_new)
        finder.freeze()
        if any(is_new for _, is_new, _ in batch):  # old documents can only leak new probes
            for path in old_docs:
                finder.scan(path, new_only=True)
        for path in new_docs:
            finder.scan(path)

# ----------------------------------------------------------------------------- stated derived facts

# where a sentence may end: after "." or "!" and a space; after a full-width stop of the scripts without
# spaces (FULL_STOPS, and a closing quote or bracket after it) with or without one, but not at the text's
# end; and at a line end. A question mark ("?", "？") ends one only where a question counts as a sentence
# of its own: for the stated-fact check a question and its answer state a fact together
_LINE_END = re.compile(r"[\n\r\v\f\x85\u2028\u2029]")
FULL_STOPS, _CLOSING = "。｡！．", "」』）”’〕】》〉"


def _sentence_end(question):
    stops = FULL_STOPS + "？" * question
    full = rf"(?:(?<=[{stops}][{_CLOSING}])|(?<=[{stops}])(?![{_CLOSING}]))(?:\s+|(?=\S))"
    return re.compile(rf"(?<=[.!{'?' * question}])\s+|{full}|{_LINE_END.pattern}+")


_SENTENCE_END = {q: _sentence_end(q) for q in (False, True)}
# a full stop after an initial or a title ("J. Smith", "St. Ives", "Dr. Mole") ends no sentence on one
# line: a name that holds one would be split from what its sentence says of it
_LAST_WORD = re.compile(r"(?<!\w)(\w{1,4})\.$")
TITLES = frozenset("Mr Mrs Ms Dr St Mt Jr Sr Prof Rev Fr Gen Col Capt Lt Sgt".split())


def _abbreviation(text, end):
    """Whether text[:end] ends in an initial or a title and its full stop."""
    m = _LAST_WORD.search(text, max(0, end - 5), end)
    return m is not None and (m[1] in TITLES or (len(m[1]) == 1 and m[1].isalpha() and m[1].isupper()))


def sentences(text, question=False):
    """The sentences of text: split after "." or "!" (with question, "?" too), the full-width stops and
    at line ends, but not after an initial or a title on the same line (_abbreviation)."""
    out, start = [], 0
    for m in _SENTENCE_END[question].finditer(text):
        if _LINE_END.search(m.group()) or not _abbreviation(text, m.start()):
            out.append(text[start:m.start()])
            start = m.end()
    return out + [text[start:]]


# a run of characters of a script without spaces, marked among the words: its characters are words of
# their own, but a fact's run must stand whole in a sentence (kana or Thai letters are sounds, not words)
_RUN = "\0"
_TERMS = re.compile(rf"(?P<run>[{UNSPACED}]+)|{SPACED}+")


def _words(text):
    """The words of text as the stated-fact check compares them, read as the verbatim check reads text:
    a spaced script's words stemmed (_stem), and each run of a script without spaces whole, marked _RUN."""
    return [_RUN + m[0] if m["run"] else _stem(m[0]) for m in _TERMS.finditer(as_read(text).casefold())]


def _key(word):
    """What a fact is filed under by its entity's first word (_words): a run by its first character."""
    return word[:2] if word[0] == _RUN else word


def _stem(word):
    """One form for a word's inflections, so that a sentence saying "humming" states "hums": the
    suffix -ing, -ed, -es or -s (not of -ss) off, a doubled last consonant halved (humm-ing), a last e
    off (hid-es, hid-e). Crude, as a screen may be: unrelated words may meet (a name ending in -ed)."""
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and not word.endswith("ss") and len(word) - len(suffix) >= 3:
            word = word[:-len(suffix)]
            break
    if len(word) >= 4 and word[-1] == word[-2] and word[-1] not in "aeiouls":
        word = word[:-1]
    return word[:-1] if len(word) >= 4 and word.endswith("e") else word


# what a leak of each kind states, and why it may not
_DERIVED = "this derived probe's answer about its entity", "a probe with premises must follow from them, not be read"
_PRACTISED = ("this probe's answer with the rest of its fact", "practice states no fact of a unit's own, or the base "
              "would pretrain on what the probe asks")


def derived_facts(path, replaced=None):
    """The derived probes of a unit file, by the first word of their entity: {word: [(the entity's
    words, the answer's words less its article, "path:line", what its leak states and why it may not)]};
    with the words `replaced`, every probe with a cluster, as practised_facts gives them."""
    out = {}
    for what, no, p in iter_records(path):
        if what == "probe" and isinstance(p.get("cluster"), str) and (p.get("premises") or replaced is not None):
            answer = _words(without_article(p["answer"]))
            gone = set() if replaced is None else replaced | set(answer)
            entity = [w for w in _words(p["cluster"]) if w not in gone]
            if entity and answer:
                why = _DERIVED if p.get("premises") else _PRACTISED
                out.setdefault(_key(entity[0]), []).append((set(entity), set(answer), f"{path}:{no}", why))
    return out


def practised_facts(path, replaced):
    """As derived_facts, for every probe of a unit file with a cluster, its entity less the words of the
    names `replaced` and of its answer: the rest of its fact, which practice (inventing those names anew)
    still states as the unit's own. A rule keeps its key ("meadow" of "night:meadow"); a probe about a
    replaced name has none left, nor one whose cluster labels its fact ("ashcress:fever")."""
    return derived_facts(path, {w for name in replaced for w in _words(name)})


def _merge(facts):
    out = {}
    for f in facts:
        for k, v in f.items():
            out.setdefault(k, []).extend(v)
    return out


def stating(sentence, facts):
    """The first of facts (as derived_facts or practised_facts give them) whose entity and answer the sentence
    names (every word of each, any order, any case, any form; a run of a script without spaces whole, as it
    stands), else None; in order, so each run names the same."""
    terms = _words(sentence)
    runs = "\n".join(t[1:] for t in terms if t[0] == _RUN)  # a fact's run stands inside one of them
    # the facts are filed by their entity's first word, a run by its first character (_key)
    words = {t for t in terms if t[0] != _RUN} | {_RUN + c for t in terms if t[0] == _RUN for c in t[1:]}
    for first in sorted(words & facts.keys()):
        for fact in facts[first]:
            if all(w[1:] in runs if w[0] == _RUN else w in words for w in fact[0] | fact[1]):
                return fact
    return None


def _scan_stated(path, facts):
    """Raise CurriculumError at the first sentence of the unit file at path that states a fact (stating)."""
    for no, text in iter_documents(path):
        for sentence in sentences(text):
            fact = stating(sentence, facts)
            if fact:
                (says, why), where = fact[3], fact[2]
                raise CurriculumError(f"{where}: leakage: a document states {says} ({path}:{no}: "
                                      f"{normalize(sentence)[:80]!r}); {why}")


def stated_in(probe_files, document_files, replaced=None):
    """Raise CurriculumError if a document of document_files states a derived probe of probe_files:
    names its entity and its answer in one sentence, in any of their words' forms (_stem); with the names
    practice `replaced`, any probe with a cluster, by what replacement leaves of it (practised_facts). A
    screen for text made from knowledge units (practice.py checks what it writes; add and leakage.py
    check units), not a proof: a negation still names both, and an irregular form ("slept") is missed."""
    facts = _merge(derived_facts(p) for p in probe_files)
    if replaced is not None:  # derived facts whole too: the register names listed names unreplaced
        facts = _merge([facts] + [practised_facts(p, replaced) for p in probe_files])
    for path in document_files if facts else ():
        _scan_stated(path, facts)


@stops_in_one_line("run the same command again: the check writes nothing")
def main(argv=None):
    p = argparse.ArgumentParser(description="Check a batch of unit files for leakage: a probe's prompt + "
                                "answer verbatim in any of their documents, or a derived probe's answer stated "
                                "about its entity in a sentence; exit 2 naming the probe and document.")
    p.add_argument("files", nargs="+", help="unit files (.jsonl) to check together")
    p.add_argument("--leak-budget", type=int, default=LEAK_BUDGET,
                   help="probe needles (two a probe) held at once; past it, one more pass over the documents "
                        "per budget's worth (default: %(default)s)")
    args = p.parse_args(argv)
    try:
        check_budget(args.leak_budget)
        check_leakage([(i["path"], i["n_probes"]) for i in map(inspect_unit, args.files)], [], args.leak_budget)
        stated_in(args.files, args.files)
    except CurriculumError as e:
        fail(e)
    print(f"ok: no probe of {len(args.files)} files leaks into their documents")


if __name__ == "__main__":
    main()
