"""
The curriculum: a corpus of units, its ontology map, token shards, data streams and growth
passport (the unit format is in units.py, the tokenizer in bpe.py, the passport in passport.py,
the leakage check in leakage.py). A corpus is a directory that only grows:

    CORPUS/tokenizer.tiktoken            byte-level BPE ranks (base64 token, space, rank per line)
    CORPUS/tokenizer.json                name, split pattern, special tokens, vocab size
    CORPUS/passport.jsonl                append-only, hash-chained events (init, unit_added, ...)
    CORPUS/units/<id>.jsonl              accepted copies of the unit files (byte-identical)
    CORPUS/shards/<id>.train.bin|.val.bin  token memmaps, each document followed by <|endoftext|>
    CORPUS/add.lock                      held by an add while it runs: two adds on one corpus take turns

A unit belongs to the corpus iff the passport holds its unit_added event (the commit point);
files without one are leftovers of a crashed `add` and are overwritten by the next `add`.
`check --repair` mends only a final passport line lacking its newline (a crash mid-append): a whole
event gets its newline back, a torn line is dropped.
"""
import argparse
import collections
import errno
import fcntl
import hashlib
import heapq
import itertools
import json
import math
import os
import re
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from bpe import EOT, SPLIT_PATTERN, gpt2, rank_file, read_tokenizer, tokenizer_hash, train_bpe
from common import (atomic_write_bytes, check_writable, fsync_dir, interrupted, remove_orphans, same_file, sha256_file,
                    val_mask, whole_number)
from leakage import LEAK_BUDGET, check_budget, check_leakage, stated_in
from passport import Passport, holding
from stats import MIN_CLUSTERS, gate_feasibility, pct
from units import (KINDS, UNIT_ID, CurriculumError, chunks, cluster_of, inspect_unit, iter_documents,
                   iter_records)

# -----------------------------------------------------------------------------
# the corpus

def _topo_order(headers, where=None):
    """Unit ids in curriculum order: topological by requires (within headers), ties by (level, id)."""
    deps = {u: [r for r in h["requires"] if r in headers] for u, h in headers.items()}
    children, indeg = collections.defaultdict(list), {u: len(d) for u, d in deps.items()}
    for u, d in deps.items():
        for r in d:
            children[r].append(u)
    ready = [(headers[u]["level"], u) for u, k in indeg.items() if k == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        _, u = heapq.heappop(ready)
        order.append(u)
        for c in children[u]:
            indeg[c] -= 1
            if indeg[c] == 0:
                heapq.heappush(ready, (headers[c]["level"], c))
    if len(order) < len(headers):  # walk requires from a stuck unit until a unit repeats: that is a cycle
        path, u = [], min(u for u in headers if indeg[u] > 0)
        while u not in path:
            path.append(u)
            u = min(r for r in deps[u] if indeg[r] > 0)
        cycle = path[path.index(u):] + [u]
        raise CurriculumError(f"{(where or {}).get(cycle[0], cycle[0])}: cycle in requires: {' -> '.join(cycle)}")
    return order


_checked_files = {}  # (path, size, mtime) -> sha256: each file is hashed once a process, not every read


def _require_file(path, unit):
    """Refuse a shard or unit copy of an added unit that is not there (deleted, or a directory in its place)."""
    if not path.is_file():
        problem = "is a directory, not a file" if path.is_dir() else "missing"
        raise CurriculumError(f"{path}: {problem} (unit {unit!r} was added)")


def _check_file(path, recorded, unit):
    """Refuse a shard or unit copy of `unit` that is missing or whose content differs from its recorded sha256."""
    _require_file(path, unit)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _checked_files:  # not setdefault: its default would hash the file on every read
        _checked_files[key] = sha256_file(path)
    if _checked_files[key] != recorded:
        raise CurriculumError(f"{path}: sha256 differs from its unit_added event (file changed); "
                              "`curriculum.py check` checks all the files")


_WHOLE = ("a whole number >= 0", lambda v: whole_number(v, 0))
_STRING = ("a string", lambda v: isinstance(v, str))
_UNIT = ("a unit id", lambda v: isinstance(v, str) and UNIT_ID.fullmatch(v) is not None)
# what the corpus reads from a unit_added event: field -> (its rule in words, the test of it)
UNIT_ADDED_FIELDS = {
    "unit": _UNIT,
    "sha256": _STRING, "tokens": _WHOLE, "val_tokens": _WHOLE, "documents": _WHOLE, "probes": _WHOLE,
    "header.kind": (" or ".join(KINDS), lambda v: v in KINDS), "header.level": _WHOLE,
    "header.requires": ("a list of unit ids", lambda v: isinstance(v, list) and all(isinstance(r, str) for r in v)),
    "shards.train": _STRING, "shards.val": _STRING}
# what a verdict is read by: the unit it judges and whether it passed (a string "false" would be truthy)
UNIT_VERIFIED_FIELDS = {"unit": _UNIT, "passed": ("true or false", lambda v: isinstance(v, bool))}


def _by_rules(e, fields, where):
    """The event e (at where) if it holds every field of fields (field -> (rule, test)) by its rule; else
    a CurriculumError naming where and the field."""
    holding(e, fields, where)
    for field, (rule, ok) in fields.items():
        key, _, sub = field.partition(".")
        value = e[key][sub] if sub else e[key]
        if not ok(value):
            raise CurriculumError(f"{where}: {e['event']} event's {field} must be {rule}, got {value!r} "
                                  "(edited or corrupted)")
    return e


def _unit_added(e, where, added):
    """The unit_added event e (at where) if it holds every field of UNIT_ADDED_FIELDS by its rule and
    requires only units added before it, as add writes them; else a CurriculumError naming where and
    the field. A line edited by hand with its chain recomputed passes `check`'s chain, and would
    otherwise fail later in status or map as a TypeError or KeyError."""
    _by_rules(e, UNIT_ADDED_FIELDS, where)
    unknown = [r for r in e["header"]["requires"] if r not in added]
    if unknown:
        raise CurriculumError(f"{where}: unit_added event's header.requires names {unknown[0]!r}, which no "
                              "earlier unit_added event adds (edited or corrupted)")
    return e


# the files at a corpus's top level (the module's docstring): name -> what it is
CORPUS_FILES = {"tokenizer.json": "the tokenizer file", "tokenizer.tiktoken": "the tokenizer's ranks file",
                "passport.jsonl": "the passport file"}


def _check_parts(corpus_dir):
    """Refuse a directory where one of the corpus's files goes, naming it: reading it would fail as a
    corpus that cannot be read, or has no passport, naming only the corpus."""
    for name, what in CORPUS_FILES.items():
        if (Path(corpus_dir) / name).is_dir():
            raise CurriculumError(f"{Path(corpus_dir) / name}: is a directory, not {what}")


class Corpus:
    """An open corpus directory (read-mostly): units, curriculum order, documents, probes, shards, passport."""

    def __init__(self, corpus_dir):
        self.dir = Path(corpus_dir)
        _check_parts(self.dir)
        self.tokenizer, self.tokenizer_hash = read_tokenizer(self.dir)
        self.vocab_size = self.tokenizer.n_vocab
        self.dtype = np.uint16 if self.vocab_size <= 1 << 16 else np.uint32
        self.passport = Passport(self.dir / "passport.jsonl")
        if not self.passport.path.is_file():  # else its readers would see an empty corpus, its appenders start one
            raise CurriculumError(f"{self.dir}: not a corpus (no passport.jsonl)")
        self.refresh()

    def refresh(self):
        """Re-read the passport (units are exactly those with a unit_added event)."""
        self.added = {}
        for no, e in enumerate(self.passport.events(), 1):  # all events: a line's number is its place
            if e["event"] == "unit_added":
                self.added[e["unit"]] = _unit_added(e, f"{self.passport.path}:{no}", self.added)
        self.units = {u: {**e["header"], "tokens": e["tokens"], "val_tokens": e["val_tokens"],
                          "n_documents": e["documents"], "n_probes": e["probes"]} for u, e in self.added.items()}

    def unit_files(self):
        """The corpus's copy of every unit file, in the order they were added, each checked as it is reached
        (a reader that stops at the first it needs hashes no more)."""
        return (self._unit_file(u) for u in self.units)

    def _unit_file(self, unit_id):
        """The unit's copy, checked against the sha256 its unit_added event recorded: an edited copy
        would give other probes and documents than the shards were made from."""
        if unit_id not in self.units:
            raise CurriculumError(f"{self.dir}: no unit {unit_id!r} in this corpus")
        path = self.dir / "units" / f"{unit_id}.jsonl"
        _check_file(path, self.added[unit_id]["sha256"], unit_id)
        return path

    def order(self, units=None):
        """Curriculum order of the given units (default all): topological, ties by level then id."""
        ids = self.units if units is None else list(units)
        return _topo_order({u: self.units[u] for u in ids})

    def probes(self, unit_id):
        """The unit's probes, each {"probe", "answer", "choices", "type", "unit"}."""
        return [v for what, _, v in iter_records(self._unit_file(unit_id)) if what == "probe"]

    def documents(self, unit_id, split="val"):
        """The unit's documents in a split: "train", "val" or "all"."""
        docs = [t for _, t in iter_documents(self._unit_file(unit_id))]
        if split == "all":
            return docs
        mask = val_mask(unit_id, len(docs))
        return [d for d, v in zip(docs, mask) if v == (split == "val")]

    def tokens(self, unit_id, split="train"):
        """The unit's tokens in a split as a read-only 1-D memmap (documents joined with eot), from a
        shard whose sha256 is the one its unit_added event recorded (a changed shard is never used)."""
        self._unit_file(unit_id)
        path = self.dir / "shards" / f"{unit_id}.{split}.bin"
        _check_file(path, self.added[unit_id]["shards"][split], unit_id)
        if path.stat().st_size == 0:  # numpy cannot memmap an empty file
            return np.zeros(0, dtype=self.dtype)
        return np.memmap(path, dtype=self.dtype, mode="r")

    def verdicts(self):
        """unit id -> passed (bool) of its latest unit_verified event."""
        return {u: e["passed"] for u, e in self.latest_verdicts().items()}

    def latest_verdicts(self):
        """unit id -> its latest unit_verified event (a unit verified again is judged by the last), each
        checked as _unit_added checks a unit_added event (UNIT_VERIFIED_FIELDS)."""
        latest = {}
        for no, e in enumerate(self.passport.events(), 1):  # all events: a line's number is its place
            if e["event"] == "unit_verified":
                latest[e["unit"]] = _by_rules(e, UNIT_VERIFIED_FIELDS, f"{self.passport.path}:{no}")
        return latest

    def gate_reads(self, units):
        """unit id -> the probes its latest verdict's gate read (gate_read), for those of units that have
        one (only those: another unit's verdict, stale or not, is none of their business)."""
        latest = self.latest_verdicts()
        return {u: gate_read(latest[u], self.probes(u), self.dir) for u in units if u in latest}

    def verified(self):
        """Units whose latest unit_verified event passed, in curriculum order."""
        v = self.verdicts()
        return [u for u in self.order() if v.get(u) is True]

    def rejected(self):
        """Units whose latest unit_verified event failed, in curriculum order."""
        v = self.verdicts()
        return [u for u in self.order() if v.get(u) is False]

    def primitive_units(self):
        """Primitive (general text) units in curriculum order."""
        return [u for u in self.order() if self.units[u]["kind"] == "primitive"]

    def knowledge_units(self):
        """Knowledge units in curriculum order."""
        return [u for u in self.order() if self.units[u]["kind"] == "knowledge"]

    def check_init(self):
        """Refuse a passport without an init event, or a tokenizer other than the one it recorded: units
        tokenized with another tokenizer would not be the corpus the passport vouches for."""
        init = self.passport.events("init", ("tokenizer_hash",))
        if not init:
            raise CurriculumError(f"{self.passport.path}: no init event (a corpus's passport begins with the one "
                                  "`curriculum.py init` writes)")
        if init[0]["tokenizer_hash"] != self.tokenizer_hash:
            raise CurriculumError(f"{' and '.join(map(str, self._changed_tokenizer_files(init[0])))}: the "
                                  "tokenizer does not match the passport's init event")

    def _changed_tokenizer_files(self, init):
        """The tokenizer files whose sha256 differs from the one the init event recorded; both (those
        there) when it recorded none, as corpora made before it did, since the tokenizer hash covers both."""
        recorded = init.get("tokenizer_files")
        paths = [self.dir / n for n in TOKENIZER_FILES if (self.dir / n).exists()]
        if not isinstance(recorded, dict):
            return paths
        changed = [p for p in paths if p.name in recorded and sha256_file(p) != recorded[p.name]]
        return changed or paths

    def check_passport(self):
        """Verify the passport chain and that the tokenizer is its init event's: what anything that reads
        or extends the corpus must know first (never extend a broken chain); the number of events."""
        n = self.passport.check()
        self.check_init()
        return n

    def check(self):
        """Verify the passport chain, the tokenizer and every unit copy and shard hash; raise on the first bad one."""
        n = self.check_passport()
        for u, e in self.added.items():
            files = [(self.dir / "units" / f"{u}.jsonl", e["sha256"])]
            files += [(self.dir / "shards" / f"{u}.{s}.bin", e["shards"][s]) for s in ("train", "val")]
            for path, sha in files:
                _require_file(path, u)
                if sha256_file(path) != sha:
                    raise CurriculumError(f"{path}: sha256 differs from its unit_added event (file changed)")
        return n

# -----------------------------------------------------------------------------
# init and add

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.tiktoken")  # what the tokenizer hash is made of


def init(corpus_dir, files, vocab_size=4096, tokenizer="bpe", max_train_bytes=20_000_000):
    """Create a corpus dir with a tokenizer trained on the files' text (their primitive units', if any) and an
    init event (units not added)."""
    d = Path(corpus_dir)
    # the corpus replaces d whole: the current directory would leave the shell in a deleted one
    if d.resolve() == Path.cwd() or d.resolve() in Path.cwd().parents:
        raise CurriculumError(f"{corpus_dir}: is the current directory; give the corpus a new directory of its own")
    if d.exists() and (not d.is_dir() or any(d.iterdir())):
        raise CurriculumError(f"{d}: already exists and is not an empty directory; choose a new corpus directory")
    check_writable(d)  # a file above it: refused now, not after training the tokenizer
    if tokenizer not in ("bpe", "gpt2"):
        raise CurriculumError(f"unknown tokenizer {tokenizer!r} (expected bpe or gpt2)")
    if max_train_bytes < 1:  # no text trains no merge: a bytes-only tokenizer, whatever --vocab-size asks
        raise CurriculumError(f"--max-train-bytes {max_train_bytes}: the BPE's training text must be at least 1 byte")
    infos = [inspect_unit(f) for f in files]
    # The BPE learns from the primitive units when there are any: they are what the base model reads,
    # and a token the base never reads keeps an untrained embedding. Tied to the output head, all such
    # embeddings are pushed the same way ("never the next token") until they are nearly one vector,
    # and a LoRA on the frozen base cannot tell apart the names they spell. Learned from primitive text, a new name is spelled in pieces the base knows.
    bpe_files = [i["path"] for i in infos if i["header"]["kind"] == "primitive"] or [i["path"] for i in infos]
    if tokenizer == "gpt2":
        enc = gpt2()
        meta, rank_bytes = {"name": "gpt2", "type": "gpt2", "pattern": enc._pat_str,
                            "special_tokens": enc._special_tokens, "vocab_size": enc.n_vocab}, b""
    else:
        ranks = train_bpe(_training_texts(bpe_files, max_train_bytes), vocab_size)
        rank_bytes = rank_file(ranks)
        meta = {"name": f"accrete-bpe-{len(ranks) + 1}", "type": "bpe", "pattern": SPLIT_PATTERN,
                "special_tokens": {EOT: len(ranks)}, "vocab_size": len(ranks) + 1,
                "trained_on": [f.name for f in bpe_files], "max_train_bytes": max_train_bytes}
    tmp = d.parent / f".{d.name}.tmp-{os.getpid()}"
    try:
        (tmp / "units").mkdir(parents=True)
        (tmp / "shards").mkdir()
        if rank_bytes:
            atomic_write_bytes(tmp / "tokenizer.tiktoken", rank_bytes)
        atomic_write_bytes(tmp / "tokenizer.json", json.dumps(meta, indent=1).encode())
        # each file's sha256 too: a tokenizer changed later is named by the file that changed
        files = {n: sha256_file(tmp / n) for n in TOKENIZER_FILES if (tmp / n).is_file()}
        Passport(tmp / "passport.jsonl").append("init", tokenizer=meta["name"], vocab_size=meta["vocab_size"],
                                                tokenizer_hash=tokenizer_hash(meta, rank_bytes), tokenizer_files=files)
        os.replace(tmp, d)  # the corpus appears complete or not at all
        fsync_dir(d.parent)  # and stays so across a power cut
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Corpus(d)


def _training_texts(files, max_bytes):
    """Documents and probe text of the files, stopping after max_bytes (a bounded sample)."""
    seen = 0
    for f in files:
        for what, _, v in iter_records(f):
            texts = [v] if what == "document" else [v["probe"], *v["choices"]] if what == "probe" else []
            for t in texts:
                if seen >= max_bytes:
                    return
                seen += len(t.encode())
                yield t


def _changed_meanwhile(path):
    """The error for a unit file that changed between its inspection and its write."""
    return CurriculumError(f"{path}: the file changed while it was being added; run add again")


def _write_unit(corpus, info):
    """Tokenize a unit into its train/val shards and copy its file, each atomically (temporaries named
    as common.atomic_path names them, so that a later write removes a killed one's); return shard facts."""
    uid, path, enc = info["header"]["unit"], info["path"], corpus.tokenizer
    mask, eot, base = val_mask(uid, info["n_docs"]), enc.eot_token, corpus.dir / "shards"
    tmp = {s: base / f".{uid}.{s}.bin.tmp-{os.getpid()}" for s in ("train", "val")}
    files = {s: open(p, "wb") for s, p in tmp.items()}
    sha, count, i = {s: hashlib.sha256() for s in tmp}, {s: 0 for s in tmp}, 0
    try:
        # each document's tokens made an array at once: tiktoken returns Python ints (~36 bytes a
        # token, against 2 or 4 in an array), so a chunk's lists are never held together
        for chunk in chunks(iter_documents(path)):
            flat = {"train": [], "val": []}
            for t in enc.encode_ordinary_batch([t for _, t in chunk]):
                if i >= len(mask):  # documents appended since inspect_unit counted them
                    raise _changed_meanwhile(path)
                t.append(eot)
                flat["val" if mask[i] else "train"].append(np.array(t, corpus.dtype))
                i += 1
            for s, arrays in flat.items():
                ids = np.concatenate(arrays or [np.zeros(0, corpus.dtype)])
                data = ids.tobytes()
                files[s].write(data)
                sha[s].update(data)
                count[s] += len(ids)
        for f in files.values():
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        for p in tmp.values():
            p.unlink(missing_ok=True)
        raise
    finally:
        for f in files.values():
            f.close()
    for s, p in tmp.items():
        os.replace(p, base / f"{uid}.{s}.bin")
        remove_orphans(base / f"{uid}.{s}.bin")
    fsync_dir(base)  # the shards' names on disk before the unit_added event that vouches for them
    copy, h = corpus.dir / "units" / f"{uid}.jsonl", hashlib.sha256()
    copy_tmp = copy.with_name(f".{copy.name}.tmp-{os.getpid()}")
    try:
        with open(path, "rb") as src, open(copy_tmp, "wb") as dst:  # streamed: big units fit
            for block in iter(lambda: src.read(1 << 20), b""):
                h.update(block)
                dst.write(block)
            dst.flush()
            os.fsync(dst.fileno())
    except BaseException:  # a full disk, or Ctrl-C: no half copy left behind (a kill -9 leaves one, for the next add)
        copy_tmp.unlink(missing_ok=True)
        raise
    if h.hexdigest() != info["sha256"]:
        copy_tmp.unlink()
        raise _changed_meanwhile(path)
    os.replace(copy_tmp, copy)
    remove_orphans(copy)
    fsync_dir(copy.parent)
    return {"tokens": count["train"], "val_tokens": count["val"], "shards": {s: h.hexdigest() for s, h in sha.items()}}


def _new_units(corpus, files, log):
    """Validate a batch: {id: inspect_unit info} of its units not yet in the corpus, in curriculum order.
    A file already added unchanged is skipped; a duplicate id (ignoring case: ids name files, and some
    file systems ignore case), an unknown requirement or one at a higher level raises."""
    infos, seen, new = [inspect_unit(f) for f in files], {}, {}
    held = {u.lower(): u for u in corpus.units}
    for info in infos:
        uid, where = info["header"]["unit"], f"{info['path']}:{info['line']}"
        if uid.lower() in seen:
            raise CurriculumError(f"{where}: duplicate unit id {uid!r} (also in {seen[uid.lower()]}); "
                                  "give each unit its own id")
        seen[uid.lower()] = where
        if uid not in corpus.units and uid.lower() in held:
            raise CurriculumError(f"{where}: unit id {uid!r} differs only in case from the corpus's "
                                  f"{held[uid.lower()]!r}; ids name files, so give it another id")
        if uid in corpus.units:
            if corpus.added[uid]["sha256"] == info["sha256"]:
                log(f"{uid}: already added")
                continue
            raise CurriculumError(f"{where}: duplicate unit id {uid!r}: the corpus already holds a different unit "
                                  "with this id; give the new unit a new id")
        new[uid] = info
    for uid, info in new.items():
        for r in info["header"]["requires"]:
            if r not in corpus.units and r not in new:
                raise CurriculumError(f"{info['path']}:{info['line']}: requires unknown unit {r!r} "
                                      "(neither in the corpus nor in this batch)")
            level = (new[r]["header"] if r in new else corpus.units[r])["level"]
            if level > info["header"]["level"]:  # streams serve a curriculum level by level
                raise CurriculumError(f"{info['path']}:{info['line']}: level {info['header']['level']} is below "
                                      f"the level {level} of {r!r}, which it requires; a unit's level is at least "
                                      "that of each unit it requires")
    order = _topo_order({u: i["header"] for u, i in new.items()},
                        {u: f"{i['path']}:{i['line']}" for u, i in new.items()})
    return {u: new[u] for u in order}


def _requirements(headers, uid):
    """Every unit that uid requires, directly or through others (headers: id -> header)."""
    seen, todo = set(), list(headers[uid]["requires"])
    while todo:
        u = todo.pop()
        if u not in seen:
            seen.add(u)
            todo += headers[u]["requires"]
    return seen


def _check_premises(corpus, new):
    """Refuse a probe with a premise that is the prompt of no probe of its unit or of a unit it
    requires (transitively): its facts are taught before it, and evaluate.py's composition report
    could never tell whether a model knows an unknown premise (it counts it "not found")."""
    headers = {**corpus.units, **{u: i["header"] for u, i in new.items()}}
    prompts = {}  # unit id -> its probes' prompts, each unit read once

    def asked(u):
        if u not in prompts:
            path = new[u]["path"] if u in new else corpus._unit_file(u)
            prompts[u] = {v["probe"] for what, _, v in iter_records(path) if what == "probe"}
        return prompts[u]

    for uid, info in new.items():  # inspect_unit kept only the premises its own probes do not ask
        required = _requirements(headers, uid) if info["premises"] else ()
        for no, premise in info["premises"]:
            if not any(premise in asked(r) for r in required):
                raise CurriculumError(f"{info['path']}:{no}: premise {premise!r} is the prompt of no probe of "
                                      f"unit {uid!r} or of the units it requires")


def has_probe_type(files, name):
    """Whether any of these unit files has a probe of type name (reading only until one is found)."""
    return any(what == "probe" and v["type"] == name for f in files for what, _, v in iter_records(f))


def check_gate_on(gate_on, files):
    """Refuse a gate_on (but "all") that no probe in these unit files has: the gate reads it as "none of
    that type in this unit" and reads every type, so a typo would pass as a gate on all types."""
    if gate_on not in (None, "all") and not has_probe_type(files, gate_on):
        raise CurriculumError(f"--gate-on {gate_on}: no unit has probes of that type (all: every type)")


def _check_gate_on(corpus, new, gate_on):
    """check_gate_on over the new and held units, when a new knowledge unit is to be told what its gate
    needs."""
    if any(i["header"]["kind"] == "knowledge" for i in new.values()):
        check_gate_on(gate_on, itertools.chain((i["path"] for i in new.values()), corpus.unit_files()))


def add(corpus_dir, files, log=print, leak_budget=None, gate_on="recall", threshold=0.5, clear_of_chance=True):
    """Validate unit files, all before any is written, and add them (shards, unit copy, then a
    unit_added event each, the commit point, in curriculum order). Files already added unchanged are skipped. Return added ids.
    leak_budget: probe needles held at once by the leakage check (default LEAK_BUDGET). gate_on,
    threshold, clear_of_chance: the verify gate each added knowledge unit is checked against (gate_report)."""
    check_budget(leak_budget)
    if not 0 <= threshold <= 1:
        raise CurriculumError(f"threshold {threshold}: it must be an accuracy, between 0 and 1")
    corpus = Corpus(corpus_dir)
    with open(corpus.dir / "add.lock", "a") as lock:
        # one add at a time: a second waits here, then sees the first's units (skipped when identical)
        # and checks its probes against their documents
        fcntl.flock(lock, fcntl.LOCK_EX)
        corpus.refresh()
        corpus.check_passport()
        new = _new_units(corpus, files, log)
        _check_gate_on(corpus, new, gate_on)
        _check_premises(corpus, new)
        new_files, old_files = [i["path"] for i in new.values()], [corpus._unit_file(u) for u in corpus.units]
        check_leakage([(i["path"], i["n_probes"]) for i in new.values()],
                      [(f, corpus.added[u]["probes"]) for f, u in zip(old_files, corpus.units)], leak_budget)
        # a derived probe's answer stated about its entity in other words than its own: paired as above,
        # new probes with every document, old ones with the new documents only
        stated_in(new_files, new_files + old_files)
        stated_in(old_files, new_files)
        for uid, info in new.items():  # killed mid-way, a unit's files without its event are a leftover
            facts = _write_unit(corpus, info)  # that the next add overwrites
            h = next(iter_records(corpus.dir / "units" / f"{uid}.jsonl"))[2]  # whole, from the copy just hash-checked
            corpus.passport.append("unit_added", unit=uid, file=info["path"].name, sha256=info["sha256"],
                                   level=h["level"], kind=h["kind"], documents=info["n_docs"],
                                   probes=info["n_probes"], header=h, **facts)
            log(f"{uid}: added ({facts['tokens']:,} train + {facts['val_tokens']:,} val tokens)")
    corpus.refresh()  # once, for gate_report: the added units' probes are read from their copies
    for uid in (u for u, i in new.items() if i["header"]["kind"] == "knowledge"):
        log(_describe_gate(gate_report(corpus, uid, gate_on, threshold, clear_of_chance), clear_of_chance))
    return list(new)


def gate_half(probes):
    """The half of probes that a gate reads: whole clusters (the fact or entity a probe rests on, else
    its prompt), ranked by a hash, the first ceil(n/2) of them, in the order given. The other half is what the reports
    read, so that the probes a unit was selected on do not inflate its reported accuracy."""
    ranked = sorted({cluster_of(p) for p in probes}, key=lambda c: hashlib.sha256(c.encode()).hexdigest())
    gate = set(ranked[:(len(ranked) + 1) // 2])
    return [p for p in probes if cluster_of(p) in gate]


def gated_probes(probes, gate_on="recall"):
    """(the probes evaluate.py verify's accuracy gate reads, the type it gates on): the gate half
    (gate_half) of those of type gate_on, or of all of them and "all" when there are none of it (or
    gate_on is "all" or None). Reports leave these probes out."""
    if gate_on not in (None, "all") and any(p["type"] == gate_on for p in probes):
        return gate_half([p for p in probes if p["type"] == gate_on]), gate_on
    return gate_half(list(probes)), "all"


def gate_read(verdict, probes, where):
    """The probes a unit_verified event's gate read of its unit's probes. Today's gates read the gate
    half of one type (gated_probes; the event keeps the half's sha256). Verdicts recorded before gates
    read half read the whole type, and the oldest (no "gated" record) read every probe: which it was
    is told by the count the gate read, since reading half of them as read would report the other
    half as if no gate had seen it."""
    from report import probes_sha256  # torch-free; imported here, as report's readers need no corpus
    g = verdict.get("gated")
    if not g:
        return list(probes)
    half, gate_on = gated_probes(probes, "all" if g.get("types", "all") == "all" else g["types"][0])
    whole = [p for p in probes if gate_on in ("all", p["type"])]
    n, sha = (g.get("after") or {}).get("n"), g.get("probes_sha256")
    if sha is not None:
        if sha == probes_sha256(half):
            return half
    elif n is None or n == len(half):
        return half
    elif n == len(whole):
        return whole
    raise CurriculumError(f"{where}: the gate that verified {verdict['unit']!r} read other probes than its unit "
                          "file and this code give (its verdict predates a change to the gate's rule?)")


def gate_report(corpus, unit, gate_on="recall", threshold=0.5, clear_of_chance=True):
    """Whether a unit's probes can pass evaluate.py verify's accuracy gate: {unit, gate_on (the type
    gated, or "all"), n (the probes it reads), of (the probes of that type), chance, min_perfect,
    min_correct, can_pass, clusters, too_few_clusters} (see stats.gate_feasibility)."""
    every = corpus.probes(unit)
    probes, gate_on = gated_probes(every, gate_on)
    chance = float(np.mean([1 / len(p["choices"]) for p in probes])) if probes else 0.0
    of = sum(gate_on in ("all", p["type"]) for p in every)
    clusters = len({cluster_of(p) for p in probes})
    return {"unit": unit, "gate_on": gate_on, "n": len(probes), "of": of, "chance": chance,
            **gate_feasibility(len(probes), chance, threshold, clear_of_chance, clusters)}


def _describe_gate(g, clear_of_chance=True):
    """One line on a gate_report; it starts with "warning:" when the unit cannot pass."""
    kind = f"{g['gate_on']} probes" if g["gate_on"] != "all" else "probes (all types)"
    head = f"{g['unit']}: the gate reads {g['n']} of its {g['of']} {kind}, chance {pct(g['chance'])}"
    perfect = f"a perfect score clears chance from {g['min_perfect']} probes" if g["min_perfect"] else ""
    if not g["can_pass"] and g["too_few_clusters"]:  # more probes about the same entities would not pass
        return (f"warning: {head}: cannot pass the gate, even with all {g['n']} correct (its probes rest on "
                f"{g['clusters']} entities, fewer than {MIN_CLUSTERS}); give it probes about more entities")
    if not g["can_pass"]:
        return f"warning: {head}: cannot pass the gate, even with all {g['n']} correct" + (
            f" ({perfect}); give it more probes" if perfect and clear_of_chance else "")
    return f"{head}: needs at least {g['min_correct']} of {g['n']} correct" + (
        f"; {perfect}" if clear_of_chance else "")

# -----------------------------------------------------------------------------
# selections and streams

def select(corpus, spec):
    """Resolve a selection (ids and selectors all, verified, rejected, untested, primitive, knowledge,
    level:N, level:A-B; a list or a comma-separated string) to unit ids in curriculum order."""
    corpus = corpus if isinstance(corpus, Corpus) else Corpus(corpus)
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    v, chosen = corpus.verdicts(), set()
    for item in (s.strip() for s in items if s.strip()):
        kinds = {u: h["kind"] for u, h in corpus.units.items()}
        if item == "all":
            chosen |= set(kinds)
        elif item in ("verified", "rejected"):
            chosen |= {u for u in kinds if v.get(u) is (item == "verified")}
        elif item == "untested":
            chosen |= {u for u, k in kinds.items() if k == "knowledge" and u not in v}
        elif item in KINDS:
            chosen |= {u for u, k in kinds.items() if k == item}
        elif m := re.fullmatch(r"level:(\d+)(?:-(\d+))?", item):
            lo, hi = int(m[1]), int(m[2] or m[1])
            chosen |= {u for u, h in corpus.units.items() if lo <= h["level"] <= hi}
        elif item in corpus.units:
            chosen.add(item)
        else:
            raise CurriculumError(f"unknown unit or selector {item!r} (selectors: all, verified, rejected, untested, "
                                  "primitive, knowledge, level:N, level:A-B)")
    return corpus.order(chosen)


class _Pool:
    """Some units' token memmaps, sampled as windows that start at a token drawn uniformly and read on
    through the units in turn, the last joining the first (each unit ends in an eot, as each document
    does): every token is in equally many windows, the first and last documents of a unit included."""

    def __init__(self, corpus, units, split):
        self.units = [u for u in units if len(corpus.tokens(u, split))]
        self.arrays = [corpus.tokens(u, split) for u in self.units]
        self.ends = np.cumsum([len(a) for a in self.arrays], dtype=np.int64)
        self.total = int(self.ends[-1]) if self.units else 0

    def window(self, u, n):
        """(the unit of its first token, n tokens) for a uniform u in [0, 1)."""
        p = min(int(u * self.total), self.total - 1)
        k = int(np.searchsorted(self.ends, p, side="right"))
        first, a = self.units[k], self.arrays[k]
        p -= int(self.ends[k]) - len(a)
        if p + n <= len(a):
            return first, a[p:p + n]
        out, filled = np.empty(n, np.int64), 0
        while filled < n:
            take = min(n - filled, len(a) - p)
            out[filled:filled + take] = a[p:p + take]
            filled, k, p = filled + take, (k + 1) % len(self.units), 0
            a = self.arrays[k]
        return first, out


# how rows are made: in the selection, so that a cursor saved under another way of making them (a window
# started uniformly inside a unit, rehearsal by a coin flip per row: version 1) is refused, not continued
SAMPLER = 2


def _every(i, share):
    """Whether item i is one of a share spread evenly over items 0, 1, 2, ... (exactly floor(n * share)
    of the first n)."""
    return math.floor((i + 1) * share) > math.floor(i * share)


def _check_replay(replay, units, n_stages, replay_units):
    """Refuse a replay share no row would serve, which the selection would still record: no knowledge
    units (every row primitive), or one level and no replay units (nothing earlier to rehearse)."""
    if replay > 0 and n_stages == 0:
        raise CurriculumError(f"replay {replay:g}: the units {units!r} select no knowledge unit, so every row is "
                              "primitive text and none would rehearse; use replay 0")
    if replay > 0 and n_stages == 1 and not replay_units:
        raise CurriculumError(f"replay {replay:g}: the units {units!r} select one level and no replay units, so "
                              "there is nothing earlier to rehearse; use replay 0 or name the units to rehearse")


class Stream:
    """Deterministic (x, y) batches over a selection of units with a tiny resumable cursor {"batch": i}.

    In curriculum order the knowledge rows go level by level, each level's share of the token budget
    in proportion to its tokens. replay: the share of knowledge rows (spread evenly, exact as the
    primitive share is) drawn from earlier levels (level 2 on), or, with replay_units, from those units
    at every stage (rehearsal: e.g. the units verified before the one an adapter learns, so that
    learning it does not erase them). Shuffled order serves exactly the curriculum order's rows of each
    pass over the token budget (rounded up to whole batches; windows, replay and primitive rows alike),
    permuted anew each pass: over whole passes the control differs in order and in nothing else. (A run
    that stops mid-pass has read the curriculum's first levels, and a random part of every level in
    shuffled order.)"""

    def __init__(self, corpus, units, batch_size, block_size, primitive_share=0.0, order="curriculum",
                 replay=0.0, token_budget=None, seed=0, split="train", replay_units=None):
        corpus = corpus if isinstance(corpus, Corpus) else Corpus(corpus)
        if order not in ("curriculum", "shuffled"):
            raise CurriculumError(f"unknown order {order!r} (expected curriculum or shuffled)")
        if not (0 <= primitive_share <= 1 and 0 <= replay <= 1) or batch_size < 1 or block_size < 1:
            raise CurriculumError("primitive_share and replay must be in [0, 1], batch_size and block_size >= 1")
        ids = select(corpus, units)
        if not ids:  # "verified" before any unit passed, say: training on primitive text alone is not what was asked
            raise CurriculumError(f"{corpus.dir}: the selection {units!r} names no unit (yet)")
        know = [u for u in ids if corpus.units[u]["kind"] == "knowledge"]
        prim = [u for u in ids if corpus.units[u]["kind"] == "primitive"]
        if primitive_share > 0 and not prim:  # a share of primitive text without naming any: all of it
            prim = corpus.primitive_units()
        ntok = lambda us: sum(len(corpus.tokens(u, split)) for u in us)
        k_tok, p_tok = ntok(know), ntok(prim)
        # share of rows from primitive units: as asked; all of them without knowledge units; their
        # natural token proportion when primitive units are selected with share 0 (none of a split
        # without tokens, which is refused just below)
        share = 1.0 if not know else primitive_share if primitive_share > 0 else p_tok / max(k_tok + p_tok, 1)
        if (share > 0 and p_tok == 0) or (share < 1 and k_tok == 0):
            raise CurriculumError(f"the selection {units!r} has no {split} tokens to serve")
        levels = sorted({corpus.units[u]["level"] for u in know})
        stages = [[u for u in know if corpus.units[u]["level"] == lv] for lv in levels]
        epoch = k_tok / (1 - share) if know and share < 1 else p_tok
        self.token_budget = int(token_budget or epoch)
        # whole batches: a batch never straddles two passes, so every pass is one set of rows in both orders
        self.total_rows = batch_size * max(1, -(-self.token_budget // (block_size * batch_size)))
        cum = np.cumsum([ntok(s) for s in stages]) / max(k_tok, 1)
        self.bounds = np.round(cum * self.total_rows).astype(np.int64)  # stage s owns rows [bounds[s-1], bounds[s])
        self.pools = [_Pool(corpus, s, split) for s in stages]
        # an earlier level with nothing in this split (a one-document unit's validation) has nothing to replay
        self.replay_pools = [None] + [pool if pool.total else None for pool in
                                      (_Pool(corpus, sum(stages[:s], []), split) for s in range(1, len(stages)))]
        replay_units = select(corpus, replay_units) if replay_units else []
        _check_replay(replay, units, len(stages), replay_units)
        if replay_units:  # one rehearsal pool for every stage (a unit with no tokens in this split is skipped)
            pool = _Pool(corpus, replay_units, split)
            self.replay_pools = [pool if pool.total else None] * len(stages)
        self.prim_pool = _Pool(corpus, prim, split) if share > 0 else None
        self.B, self.T, self.share, self.replay, self.seed, self.batch = batch_size, block_size, share, replay, seed, 0
        self.order, self.last_units, self._permutation = order, [], None
        self.selection = {"units": know, "primitive_units": prim, "primitive_share": share, "order": order,
                          "replay": replay, "replay_units": replay_units, "token_budget": self.token_budget, "seed": seed, "split": split,
                          "batch_size": batch_size, "block_size": block_size, "total_rows": self.total_rows,
                          "tokenizer_hash": corpus.tokenizer_hash, "sampler": SAMPLER,
                          "stages": [{"level": lv, "units": s, "tokens": ntok(s)} for lv, s in zip(levels, stages)]}
        self.selection_hash = hashlib.sha256(json.dumps(self.selection, sort_keys=True).encode()).hexdigest()

    @property
    def tokens_served(self):
        """Tokens served so far (B * T per batch)."""
        return self.batch * self.B * self.T

    @property
    def exhausted(self):
        """True once the token budget has been served (the stream keeps cycling after)."""
        return self.tokens_served >= self.token_budget

    def _pool(self, r):
        """The pool curriculum row r draws from: primitive rows spread evenly (an exact share), and
        of the knowledge rows, rehearsals spread evenly at the replay share where its stage has
        something to rehearse; else the row's stage."""
        if _every(r, self.share):
            return self.prim_pool
        s = int(np.searchsorted(self.bounds, r % self.total_rows, side="right"))
        s = min(s, len(self.pools) - 1)
        knowledge_row = r - math.floor(r * self.share)  # the primitive rows before r are floor(r * share)
        return self.replay_pools[s] if self.replay_pools[s] and _every(knowledge_row, self.replay) else self.pools[s]

    def _draws(self, rows):
        """Each row's uniform draw, where its window starts: a function of (seed, the row's batch),
        so any row can be made alone (resumable by index)."""
        batches = {b: np.random.default_rng([self.seed, b]).random(self.B) for b in {r // self.B for r in rows}}
        return [batches[r // self.B][r % self.B] for r in rows]

    def _curriculum_rows(self, batch):
        """The indices of the curriculum rows a batch serves: its own, or in shuffled order a
        permutation of its pass's rows (each pass over the budget permuted anew)."""
        rows = range(batch * self.B, (batch + 1) * self.B)
        if self.order == "curriculum":
            return list(rows)
        n = self.total_rows
        p = batch * self.B // n  # whole batches: a batch lies in one pass
        return [p * n + int(self._pass_permutation(p)[r % n]) for r in rows]

    def _pass_permutation(self, p):
        """Pass p's permutation, a function of (seed, p) alone so that resuming by batch index is exact;
        only the current pass's is kept (a stream may make thousands of passes over a small unit). The
        first pass keeps the key it always had, so one-pass runs (the ladder's scratch) read as before."""
        if self._permutation is None or self._permutation[0] != p:
            # 1 << 32 sets it apart from the draws ([seed, batch]) of any batch a run reaches
            key = [self.seed, 1 << 32] + ([p] if p else [])
            self._permutation = (p, np.random.default_rng(key).permutation(self.total_rows))
        return self._permutation[1]

    def next_batch(self):
        """(x, y) int64 arrays of shape (B, T); y is x shifted by one."""
        rows = self._curriculum_rows(self.batch)
        out, self.last_units = np.empty((self.B, self.T + 1), np.int64), []
        for j, (r, u) in enumerate(zip(rows, self._draws(rows))):
            unit, out[j] = self._pool(r).window(u, self.T + 1)
            self.last_units.append(unit)
        self.batch += 1
        return np.ascontiguousarray(out[:, :-1]), np.ascontiguousarray(out[:, 1:])

    def __iter__(self):
        while True:
            yield self.next_batch()

    def state_dict(self):
        """The cursor: the next batch index (batches are a function of seed and index), and the kind of
        stream and selection it counts batches of."""
        return {"kind": "corpus", "batch": self.batch, "selection_hash": self.selection_hash}

    def load_state_dict(self, d):
        """Resume from state_dict(); refuses a token file's cursor, or one from a different selection."""
        # a token file's cursor names no selection (train.TokenFileStream): continuing its batch count
        # here would start the curriculum mid-way and credit the token file's tokens to this corpus
        if d.get("kind", "corpus") != "corpus" or "selection_hash" not in d:
            raise CurriculumError("stream cursor was saved by a run on a token file (--data), not a corpus "
                                  "selection; resume with the same data source")
        if d["selection_hash"] != self.selection_hash:
            raise CurriculumError("stream cursor belongs to a different selection (other units or options, or "
                                  "another version's sampler); resume with the same units and options")
        self.batch = int(d["batch"])

# -----------------------------------------------------------------------------
# reports: map and status

def _status_of(corpus, u, verdicts):
    if corpus.units[u]["kind"] == "primitive":
        return "primitive"
    status = {True: "verified", False: "rejected"}.get(verdicts.get(u), "untested")
    # a unit taught on a model that lacks what it builds on: verified, yet not as the curriculum meant
    unmet = [r for r in corpus.units[u]["requires"] if corpus.units[r]["kind"] == "knowledge" and not verdicts.get(r)]
    return f"{status}; requires unverified {', '.join(unmet)}" if status == "verified" and unmet else status


def render_map(corpus, dot=False):
    """The ontology map (units by requires) as an indented text tree, or Graphviz dot."""
    order, v = corpus.order(), corpus.verdicts()
    if dot:
        lines = ["digraph ontology {", "  rankdir=LR;"]
        for u in order:
            h = corpus.units[u]
            label = f'{u}\\nL{h["level"]} {h["kind"]} {h["tokens"] + h["val_tokens"]} tok\\n{_status_of(corpus, u, v)}'
            lines.append(f'  "{u}" [label="{label}"];')
            lines += [f'  "{r}" -> "{u}";' for r in h["requires"]]
        return "\n".join(lines + ["}"])
    depth, lines = {}, []
    for u in order:
        h = corpus.units[u]
        depth[u] = 1 + max((depth[r] for r in h["requires"]), default=-1)
        req = f"  <- {', '.join(h['requires'])}" if h["requires"] else ""
        lines.append(f"{'  ' * depth[u]}{u}  [L{h['level']} {h['kind']}, {h['tokens'] + h['val_tokens']:,} tok, "
                     f"{_status_of(corpus, u, v)}]{req}")
    return "\n".join(lines) if lines else "(empty corpus)"


def status(corpus, target=100_000_000):
    """Units and tokens by level and kind, verification counts, progress toward target, primitive share."""
    if target < 1:
        raise CurriculumError(f"--target {target}: give the corpus size aimed at, in tokens (at least 1)")
    v, counts = corpus.verdicts(), collections.Counter()
    by_level, by_kind = collections.defaultdict(lambda: [0, 0]), collections.defaultdict(lambda: [0, 0])
    for u, h in corpus.units.items():
        n = h["tokens"] + h["val_tokens"]
        for table, key in ((by_level, str(h["level"])), (by_kind, h["kind"])):
            table[key][0] += 1
            table[key][1] += n
        counts[_status_of(corpus, u, v)] += 1
    total = sum(t for _, t in by_kind.values())
    return {"corpus": str(corpus.dir), "units": len(corpus.units), "tokens": total, "vocab_size": corpus.vocab_size,
            "by_level": {k: {"units": a, "tokens": b} for k, (a, b) in sorted(by_level.items(), key=lambda x: int(x[0]))},
            "by_kind": {k: {"units": a, "tokens": b} for k, (a, b) in sorted(by_kind.items())},
            "verified": counts["verified"], "rejected": counts["rejected"], "untested": counts["untested"],
            "target": target, "progress": total / target,
            "primitive_share": by_kind["primitive"][1] / total if total else 0.0}


def _print_status(s):
    print(f"{s['corpus']}: {s['units']} units, {s['tokens']:,} tokens, vocab {s['vocab_size']}")
    for name in ("by_level", "by_kind"):
        for k, d in s[name].items():
            print(f"  {'level ' + k if name == 'by_level' else k:<12} {d['units']:>6} units {d['tokens']:>14,} tokens")
    print(f"  knowledge units: {s['verified']} verified, {s['rejected']} rejected, {s['untested']} untested")
    print(f"  progress: {s['tokens']:,} / {s['target']:,} tokens ({100 * s['progress']:.2f}%)")
    print(f"  primitive share of its tokens: {100 * s['primitive_share']:.2f}% (a training's own: --primitive-share)")

# -----------------------------------------------------------------------------

def _parser():
    p = argparse.ArgumentParser(description="accrete curriculum: grow a corpus of verified units, one batch of "
                                "unit files at a time; every change is recorded in the corpus's growth passport.")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="{init,add,map,status,check}",
                           help="the command (`curriculum.py COMMAND --help` says more)")
    a = sub.add_parser("init", help="create a corpus and train its tokenizer on the files' text (the primitive "
                       "units' when there are any); the units are not added", description="Create a corpus "
                       "directory and its tokenizer; add the units afterwards with `add`.")
    a.add_argument("corpus", help="the new corpus directory (must not exist, or be empty)")
    a.add_argument("files", nargs="+", help="unit files (.jsonl) whose text trains the tokenizer")
    a.add_argument("--vocab-size", type=int, default=4096, help="tokens of the BPE, <|endoftext|> included "
                   "(default 4096; at least 257)")
    a.add_argument("--tokenizer", choices=("bpe", "gpt2"), default="bpe", help="bpe: a byte-level BPE trained on "
                   "the files (default); gpt2: GPT-2's tokenizer, for a base of GPT-2 weights")
    a.add_argument("--max-train-bytes", type=int, default=20_000_000, help="train the BPE on this much text at "
                   "most (default 20,000,000; at least 1)")
    a = sub.add_parser("add", help="validate unit files and add them", description="Validate unit files and "
                       "check their probes for leakage, all before any is written, then add them in curriculum order.")
    a.add_argument("corpus", help="the corpus directory")
    a.add_argument("files", nargs="+", help="unit files (.jsonl); files already added unchanged are skipped")
    a.add_argument("--leak-budget", type=int, default=LEAK_BUDGET,
                   help="probe needles (two a probe, 20-24 bytes each) the leakage check holds at once; "
                        f"past it, one more pass over the documents per budget's worth (default {LEAK_BUDGET:,})")
    a.add_argument("--gate-on", default="recall", help="the probe type evaluate.py verify's accuracy gate will read "
                   "(default recall; all probes when a unit has none of it; 'all' for every type): each added "
                   "knowledge unit is told how many correct answers pass, and warned when none can")
    a.add_argument("--threshold", type=float, default=0.5, help="the gate's minimum accuracy, between 0 and 1 "
                   "(default 0.5, as verify's)")
    a.add_argument("--clear-of-chance", action=argparse.BooleanOptionalAction, default=True,
                   help="the gate also asks the 95%% interval's lower bound to be above chance (default, as "
                   "verify's; --no-clear-of-chance drops that part)")
    a = sub.add_parser("map", help="show the ontology map in curriculum order",
                       description="Print the units as a tree by requires, in curriculum order.")
    a.add_argument("corpus", help="the corpus directory")
    a.add_argument("--dot", action="store_true", help="print Graphviz dot instead of an indented tree")
    a = sub.add_parser("status", help="sizes, verification and progress toward a target",
                       description="Units and tokens by level and kind, verification counts, progress toward "
                       "a target and the primitive share.")
    a.add_argument("corpus", help="the corpus directory")
    a.add_argument("--target", type=int, default=100_000_000, help="the corpus size aimed at, in tokens "
                   "(default 100,000,000)")
    a.add_argument("--json", action="store_true", help="print the figures as JSON")
    a = sub.add_parser("check", help="verify the passport chain and every file hash (exit 0 ok, 2 bad)",
                       description="Verify the passport's hash chain, the tokenizer and every unit copy and "
                       "shard against its event; exit 2 naming the first bad line or file.")
    a.add_argument("corpus", help="the corpus directory")
    a.add_argument("--repair", action="store_true", help="first mend a final passport line lacking its newline "
                   "(a crash mid-append): a whole event gets it back, a torn line is dropped; nothing else")
    a.add_argument("--head", help="a passport head recorded earlier: its sha256, or a report.json that keeps "
                   "it (passport_head); exit 2 unless it is still a line of the chain (lines cut from the end, "
                   "or the last line edited, since)")
    return p


def _checked(corpus_dir):
    """The corpus for a report (map, status), its passport chain and init event checked as `check`
    checks them: an empty passport or a line lacking its newline is refused, not described."""
    corpus = Corpus(corpus_dir)
    corpus.check_passport()
    return corpus


def recorded_head(text):
    """The sha256 that --head gives, and the corpus directory its report names (None for a bare sha256
    or a report naming none): itself, or the passport_head and corpus of the report file it names."""
    if re.fullmatch(r"[0-9a-f]{64}", text):
        return text, None
    path = Path(text)
    if not path.is_file():
        raise CurriculumError(f"{text}: --head is neither a sha256 (64 hex digits) nor a report file")
    try:
        report = json.loads(path.read_text())
        head, corpus = report.get("passport_head"), report.get("corpus")
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError, RecursionError):
        head = corpus = None
    if not (isinstance(head, str) and re.fullmatch(r"[0-9a-f]{64}", head)):
        raise CurriculumError(f"{path}: no passport_head (a sha256) to check; is it a report.json?")
    return head, corpus if isinstance(corpus, str) and corpus else None


def check_head(passport, head, n, named=None):
    """Where the recorded head is in the chain of n lines, in words; a CurriculumError if in none, which
    says so where the head's report named (named) another corpus whose passport holds the head."""
    no = passport.line_of(head)
    other = Path(named or "") / "passport.jsonl"
    if no is None and named and other.is_file() and not same_file(other, passport.path) and \
            Passport(other).line_of(head) is not None:
        raise CurriculumError(f"{passport.path}: no line has the recorded head's sha256 {head[:12]}...; the report "
                              f"is of another corpus, {named}, whose passport holds it")
    if no is None:
        raise CurriculumError(f"{passport.path}: no line has the recorded head's sha256 {head[:12]}...: lines "
                              "were cut from the end, or the last line edited, after it was recorded")
    return f"the recorded head is line {no} of {n} (events since: {n - no})"


def _how_to_go_on(args):
    """What an interrupted command leaves, in words (common.interrupted): add commits unit by unit, init
    renames its finished corpus into place whole (a temporary beside it goes), the others only read
    (check --repair's mend is one write)."""
    if args.cmd == "add":
        return "run the same command again: units already added are kept"
    if args.cmd == "init" and (Path(args.corpus) / "passport.jsonl").is_file():  # stopped after the rename
        return f"{args.corpus} was made whole; now run `python curriculum.py add {args.corpus} FILES...`"
    if args.cmd == "init":
        return f"no corpus was made in {args.corpus}; run the same command again"
    return "run the same command again"


def main(argv=None):
    p = _parser()
    args = p.parse_args(argv)
    try:
        if args.cmd == "init":
            t0 = time.time()
            c = init(args.corpus, args.files, args.vocab_size, args.tokenizer, args.max_train_bytes)
            # a BPE stops where its text holds no pair to merge: fewer tokens than asked, said so
            short = f", fewer than the {args.vocab_size} asked: the text it read (at most --max-train-bytes " \
                    f"{args.max_train_bytes}) holds no more merges" \
                if args.tokenizer == "bpe" and c.vocab_size < args.vocab_size else ""
            print(f"{c.dir}: tokenizer {c.tokenizer.name} ({c.vocab_size} tokens{short}) in {time.time() - t0:.1f}s; "
                  f"now run `python curriculum.py add {c.dir} FILES...`")
        elif args.cmd == "add":
            add(args.corpus, args.files, leak_budget=args.leak_budget, gate_on=args.gate_on, threshold=args.threshold,
                clear_of_chance=args.clear_of_chance)
        elif args.cmd == "map":
            print(render_map(_checked(args.corpus), dot=args.dot))
        elif args.cmd == "status":
            s = status(_checked(args.corpus), args.target)
            print(json.dumps(s, indent=1)) if args.json else _print_status(s)
        elif args.cmd == "check":
            _check_parts(args.corpus)
            passport = Passport(Path(args.corpus) / "passport.jsonl")
            if not passport.path.is_file():
                raise CurriculumError(f"{args.corpus}: not a corpus (no passport.jsonl)")
            if args.repair:
                done = passport.repair()
                if done:
                    print(f"repaired: {done}")
            passport.check()  # first, so that a bad line is named before anything parses it
            head, named = recorded_head(args.head) if args.head else (None, None)
            c = Corpus(args.corpus)
            n = c.check()
            print(f"ok: {n} events, {len(c.units)} units; passport's last line sha256 {c.passport.head()}"
                  + (f"; {check_head(passport, head, n, named)}" if head else ""))
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        interrupted(_how_to_go_on(args))
    except BrokenPipeError:  # `status | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
    except OSError as e:  # a full disk, a file too large: what was added stays, as after a kill
        full = e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # other causes want other advice
        print(f"error: {e.filename or args.corpus}: {e.strerror}" + ("; free space and run it again" if full else ""),
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
