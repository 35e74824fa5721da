"""
The curriculum: units, the ontology map, the corpus tokenizer, token shards, data streams and
the growth passport. A corpus is a directory that only grows:

    CORPUS/tokenizer.tiktoken            byte-level BPE ranks (base64 token, space, rank per line)
    CORPUS/tokenizer.json                name, split pattern, special tokens, vocab size
    CORPUS/passport.jsonl                append-only, hash-chained events (init, unit_added, ...)
    CORPUS/units/<id>.jsonl              accepted copies of the unit files (byte-identical)
    CORPUS/shards/<id>.train.bin|.val.bin  token memmaps, each document followed by <|endoftext|>

A unit belongs to the corpus iff the passport holds its unit_added event (the commit point);
files without one are leftovers of a crashed `add` and are overwritten by the next `add`.
`check --repair` drops only an incomplete final passport line (a crash mid-append).
"""
import argparse
import base64
import collections
import fcntl
import hashlib
import heapq
import json
import math
import os
import re
import shutil
import signal
import sys
import time
from pathlib import Path

import numpy as np
import regex
import tiktoken

from common import atomic_write_bytes, fsync_dir, sha256_file

# GPT-4 (cl100k) split pattern: text is cut into words, numbers, punctuation runs and spaces
# before BPE, so merges never cross those boundaries.
SPLIT_PATTERN = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
EOT = "<|endoftext|>"
KINDS = ("knowledge", "primitive")
EVENTS = ("init", "unit_added", "adapter_trained", "unit_verified", "model_trained")
HEADER_FIELDS = {"unit": str, "kind": str, "level": int, "title": str, "concepts": list,
                 "requires": list, "source": str, "license": str}
UNIT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # ids become file names
GENESIS = "0" * 64
CHUNK_CHARS = 1 << 18  # documents are scanned and tokenized ~256k characters at a time (bounded RAM)
LEAK_BUDGET = 1 << 22  # probe needles the leakage check holds at once (~110 MB at most); more take more passes


class CurriculumError(ValueError):
    """Bad unit file, corpus or selection; the message names the file (and line) and the problem."""


def _normalize(text):
    return " ".join(text.split())

# -----------------------------------------------------------------------------
# unit files: a header line, then documents {"text"} and probes {"probe", "answer", "choices", "type"}

def _scan_unit(path):
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
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise CurriculumError(f"{path}:{no}: invalid JSON ({e.msg}, column {e.colno})") from None
            if not isinstance(rec, dict):
                raise CurriculumError(f"{path}:{no}: expected a JSON object, got {type(rec).__name__}")
            yield no, rec


def _check_header(path, no, rec):
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
        raise CurriculumError(f"{where}: unit id {rec['unit']!r} must be letters, digits, '_', '.', '-' "
                              "(it names files)")
    if rec["kind"] not in KINDS:
        raise CurriculumError(f"{where}: unknown kind {rec['kind']!r} (expected 'knowledge' or 'primitive')")
    for key in ("concepts", "requires"):
        if not all(isinstance(x, str) for x in rec[key]):
            raise CurriculumError(f"{where}: header field '{key}' must be a list of strings")
    return rec


def _check_probe(path, no, rec, unit):
    where = f"{path}:{no}"
    for key in ("probe", "answer", "choices", "type"):
        if key not in rec:
            raise CurriculumError(f"{where}: probe is missing field '{key}'")
    if not isinstance(rec["probe"], str) or not rec["probe"].strip():
        raise CurriculumError(f"{where}: probe prompt must be a non-empty string")
    ch = rec["choices"]
    if not isinstance(ch, list) or len(ch) < 2 or not all(isinstance(c, str) for c in ch):
        raise CurriculumError(f"{where}: choices must be a list of at least 2 strings")
    if not isinstance(rec["type"], str) or not isinstance(rec["answer"], str):
        raise CurriculumError(f"{where}: probe answer and type must be strings")
    if rec["answer"] not in ch:
        raise CurriculumError(f"{where}: answer {rec['answer']!r} is not among its choices {ch}")
    return {"probe": rec["probe"], "answer": rec["answer"], "choices": ch, "type": rec["type"], "unit": unit}


def _iter_records(path):
    """Yield ("header"|"document"|"probe", line_no, value) for a unit file, validating each line."""
    header = None
    for no, rec in _scan_unit(path):
        if header is None:
            header = _check_header(path, no, rec)
            yield "header", no, header
        elif "text" in rec:
            if not isinstance(rec["text"], str) or not rec["text"].strip():
                raise CurriculumError(f"{path}:{no}: document text must be a non-empty string")
            yield "document", no, rec["text"]
        elif "probe" in rec:
            yield "probe", no, _check_probe(path, no, rec, header["unit"])
        else:
            raise CurriculumError(f"{path}:{no}: line is neither a document {{\"text\"}} nor a probe {{\"probe\"}}")
    if header is None:
        raise CurriculumError(f"{path}:1: missing header: the file is empty")


def _inspect(path):
    """Validate one unit file in a single streaming pass; keep its header but its concepts (a unit of
    a 1B-token world names 624, and 1,978 units' lists took 70 MB), count its documents and probes
    (a 100M-token world has 720k probes: too many to hold as records)."""
    path = Path(path)
    if not path.is_file():
        raise CurriculumError(f"{path}: no such unit file")
    info = {"path": path, "n_probes": 0, "n_docs": 0}
    for what, no, v in _iter_records(path):
        if what == "header":
            info["header"], info["line"] = {k: x for k, x in v.items() if k != "concepts"}, no
        elif what == "document":
            info["n_docs"] += 1
        else:
            info["n_probes"] += 1
    h, where = info["header"], f"{path}:{info['line']}"
    if info["n_docs"] == 0:
        raise CurriculumError(f"{where}: unit '{h['unit']}' has no documents; add {{\"text\": ...}} lines")
    if h["kind"] == "knowledge" and not info["n_probes"]:
        raise CurriculumError(f"{where}: knowledge unit '{h['unit']}' has no probes; add {{\"probe\": ...}} lines")
    info["sha256"] = sha256_file(path)
    return info


def read_unit(path):
    """Validate one unit file and return (header, documents, probes); raise CurriculumError("path:line: problem")."""
    _inspect(path)
    header, docs, probes = None, [], []
    for what, _, v in _iter_records(path):
        if what == "header":
            header = v
        else:
            (docs if what == "document" else probes).append(v)
    return header, docs, probes


def _iter_documents(path):
    """Yield (line_no, text) of a unit file's documents, streaming."""
    for what, no, v in _iter_records(path):
        if what == "document":
            yield no, v


def _chunks(items, max_chars=CHUNK_CHARS):
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

# -----------------------------------------------------------------------------
# tokenizer: byte-level BPE trained on the corpus's own text, used through tiktoken

def train_bpe(texts, vocab_size, pattern=SPLIT_PATTERN):
    """Train a byte-level BPE on an iterable of strings; return {token bytes: rank} with vocab_size-1
    ranks (the 256 bytes first, then merges in order); the last id is left for <|endoftext|>."""
    if vocab_size < 257:
        raise CurriculumError(f"vocab size {vocab_size} is too small: it must be at least 257 (256 bytes + eot)")
    pat, counts = regex.compile(pattern), collections.Counter()
    for text in texts:
        counts.update(pat.findall(text))
    words = [list(w.encode("utf-8")) for w in counts]  # unique chunks, as token ids
    freqs = list(counts.values())
    vocab = [bytes([i]) for i in range(256)]
    ids = {b: i for i, b in enumerate(vocab)}
    pair_count, where = collections.defaultdict(int), collections.defaultdict(list)
    for wi, w in enumerate(words):
        for p in zip(w, w[1:]):
            pair_count[p] += freqs[wi]
            where[p].append(wi)
    heap = [(-c, p) for p, c in pair_count.items()]  # ties break on the smallest pair: deterministic
    heapq.heapify(heap)
    while len(vocab) < vocab_size - 1 and heap:
        negc, pair = heapq.heappop(heap)
        c = pair_count.get(pair, 0)
        if c != -negc:  # stale heap entry: the count changed since it was pushed
            if c > 0:
                heapq.heappush(heap, (-c, pair))
            continue
        merged = vocab[pair[0]] + vocab[pair[1]]
        new = ids.get(merged)
        if new is None:  # two merge paths can spell the same bytes; tiktoken needs each bytes once
            new = ids[merged] = len(vocab)
            vocab.append(merged)
        before = {}  # count of each pair this merge touches, before it
        for wi in where.pop(pair):
            w, f, out, i = words[wi], freqs[wi], [], 0
            while i < len(w):
                if i + 1 < len(w) and w[i] == pair[0] and w[i + 1] == pair[1]:
                    out.append(new)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            if len(out) == len(w):
                continue  # stale index entry: the pair left this word in an earlier merge
            for p in zip(w, w[1:]):
                before.setdefault(p, pair_count[p])
                pair_count[p] -= f
            for p in zip(out, out[1:]):
                before.setdefault(p, pair_count.get(p, 0))
                pair_count[p] += f
                where[p].append(wi)
            words[wi] = out
        for p, b in before.items():
            c = pair_count.get(p, 0)
            if c > b:
                heapq.heappush(heap, (-c, p))
            elif c <= 0:
                pair_count.pop(p, None)
    return {b: i for i, b in enumerate(vocab)}


def _rank_file(ranks):
    return b"".join(base64.b64encode(b) + b" %d\n" % r for b, r in sorted(ranks.items(), key=lambda kv: kv[1]))


def _tokenizer_hash(meta, rank_bytes):
    if meta["type"] == "gpt2":
        return hashlib.sha256(b"gpt2").hexdigest()
    specials = json.dumps(meta["special_tokens"], sort_keys=True).encode()
    return hashlib.sha256(rank_bytes + b"\0" + meta["pattern"].encode() + b"\0" + specials).hexdigest()


def _gpt2():
    try:
        return tiktoken.get_encoding("gpt2")
    except Exception as e:  # tiktoken downloads its files on first use; offline that fails
        raise CurriculumError(f"the gpt2 tokenizer is unavailable ({type(e).__name__}): tiktoken needs its "
                              "cached gpt2 files (set TIKTOKEN_CACHE_DIR, or run once online); "
                              "or use --tokenizer bpe") from None


def _load_tokenizer(corpus_dir):
    d = Path(corpus_dir)
    try:
        meta = json.loads((d / "tokenizer.json").read_text())
    except FileNotFoundError:
        raise CurriculumError(f"{d}: not a corpus (no tokenizer.json); create one with "
                              f"`python curriculum.py init {d} FILES...`") from None
    if meta["type"] == "gpt2":
        return _gpt2(), _tokenizer_hash(meta, b"")
    rank_bytes = (d / "tokenizer.tiktoken").read_bytes()
    ranks = {}
    for no, line in enumerate(rank_bytes.splitlines(), 1):
        try:
            tok, rank = line.split()
            ranks[base64.b64decode(tok)] = int(rank)
        except ValueError:
            raise CurriculumError(f"{d / 'tokenizer.tiktoken'}:{no}: not a 'base64token rank' line") from None
    enc = tiktoken.Encoding(name=meta["name"], pat_str=meta["pattern"], mergeable_ranks=ranks,
                            special_tokens=meta["special_tokens"])
    return enc, _tokenizer_hash(meta, rank_bytes)


def load_tokenizer(corpus_dir):
    """The corpus's tokenizer as a tiktoken.Encoding (eot_token = n_vocab - 1)."""
    return _load_tokenizer(corpus_dir)[0]

# -----------------------------------------------------------------------------
# growth passport

class Passport:
    """Append-only JSONL of corpus events; each line holds the sha256 of the line before it."""

    def __init__(self, path):
        self.path = Path(path)

    def _last_line(self):
        """The last complete line (without newline), reading only the file's tail."""
        with open(self.path, "rb") as f:
            pos, buf = f.seek(0, 2), b""
            f.seek(max(pos - 1, 0))
            if pos and f.read(1) != b"\n":
                raise CurriculumError(f"{self.path}: the last line is incomplete (a crash mid-append?); "
                                      "run `python curriculum.py check CORPUS --repair`")
            while pos > 0:
                step = min(1 << 16, pos)
                pos -= step
                f.seek(pos)
                buf = f.read(step) + buf
                cut = buf.rfind(b"\n", 0, len(buf) - 1)
                if cut >= 0:
                    return buf[cut + 1:-1]
            return buf[:-1] if buf else None

    def append(self, event, **fields):
        """Append one event (fsynced) and return it as a dict."""
        if event not in EVENTS:
            raise CurriculumError(f"unknown passport event {event!r} (expected one of {', '.join(EVENTS)})")
        if {"event", "time", "prev"} & set(fields):
            raise CurriculumError("passport fields 'event', 'time' and 'prev' are set by the passport itself")
        with open(self.path, "ab") as f:
            fcntl.flock(f, fcntl.LOCK_EX)  # concurrent appenders (train, evaluate) must not share a prev
            last = self._last_line()
            rec = {"event": event, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   "prev": hashlib.sha256(last).hexdigest() if last is not None else GENESIS, **fields}
            try:
                line = json.dumps(rec, separators=(",", ":")).encode() + b"\n"
            except TypeError as e:
                raise CurriculumError(f"passport event {event!r} is not JSON-serializable: {e}") from None
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        return rec

    def events(self, event=None):
        """All complete events (optionally only those named event), oldest first."""
        if not self.path.exists():
            return []
        out = []
        for no, line in enumerate(self.path.read_bytes().split(b"\n")[:-1], 1):  # a torn last line is no event
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                raise CurriculumError(f"{self.path}:{no}: not a passport event (edited or corrupted); "
                                      "run `python curriculum.py check CORPUS`") from None
        return [e for e in out if event is None or e["event"] == event]

    def check(self):
        """Verify the hash chain; raise CurriculumError naming the first bad line. Return the event count."""
        lines = self.path.read_bytes().split(b"\n")
        if lines[-1] != b"":
            raise CurriculumError(f"{self.path}:{len(lines)}: incomplete final line (a crash mid-append?); "
                                  "run `python curriculum.py check CORPUS --repair` to drop it")
        lines, prev = lines[:-1], GENESIS
        for no, line in enumerate(lines, 1):
            try:
                rec = json.loads(line)
                rec_prev = rec["prev"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise CurriculumError(f"{self.path}:{no}: not a passport event (edited or corrupted)") from None
            if rec_prev != prev:
                if no == 1:
                    raise CurriculumError(f"{self.path}:1: the first event must have prev = {GENESIS[:8]}...")
                raise CurriculumError(f"{self.path}:{no - 1}: line {no - 1} was edited: its sha256 differs from "
                                      f"the one recorded in line {no}")
            prev = hashlib.sha256(line).hexdigest()
        return len(lines)

    def repair(self):
        """Drop an incomplete final line (a crash mid-append), and nothing else. Return bytes dropped."""
        data = self.path.read_bytes()
        if not data or data.endswith(b"\n"):
            return 0
        keep = data.rfind(b"\n") + 1
        with open(self.path, "r+b") as f:
            f.truncate(keep)
            os.fsync(f.fileno())
        return len(data) - keep

# -----------------------------------------------------------------------------
# the corpus

def _val_mask(unit_id, n):
    """Deterministic held-out split of a unit's n documents: ~10% by a hash of (unit id, index),
    at least one val document when n >= 2, at least one train document always."""
    seed = np.uint64(int.from_bytes(hashlib.sha256(unit_id.encode()).digest()[:8], "little"))
    z = np.arange(n, dtype=np.uint64) + seed + np.uint64(0x9E3779B97F4A7C15)  # splitmix64, wraps mod 2^64
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    mask = ((z ^ (z >> np.uint64(31))) % np.uint64(10)) == 0
    if n >= 2 and not mask.any():
        mask[n - 1] = True
    if n and mask.all():
        mask[0] = False
    return mask


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


class Corpus:
    """An open corpus directory (read-mostly): units, curriculum order, documents, probes, shards, passport."""

    def __init__(self, corpus_dir):
        self.dir = Path(corpus_dir)
        self.tokenizer, self.tokenizer_hash = _load_tokenizer(self.dir)
        self.vocab_size = self.tokenizer.n_vocab
        self.dtype = np.uint16 if self.vocab_size <= 1 << 16 else np.uint32
        self.passport = Passport(self.dir / "passport.jsonl")
        self.refresh()

    def refresh(self):
        """Re-read the passport (units are exactly those with a unit_added event)."""
        self.added = {e["unit"]: e for e in self.passport.events("unit_added")}
        self.units = {u: {**e["header"], "tokens": e["tokens"], "val_tokens": e["val_tokens"],
                          "n_documents": e["documents"], "n_probes": e["probes"]} for u, e in self.added.items()}

    def _unit_file(self, unit_id):
        if unit_id not in self.units:
            raise CurriculumError(f"{self.dir}: no unit {unit_id!r} in this corpus")
        return self.dir / "units" / f"{unit_id}.jsonl"

    def order(self, units=None):
        """Curriculum order of the given units (default all): topological, ties by level then id."""
        ids = self.units if units is None else list(units)
        return _topo_order({u: self.units[u] for u in ids})

    def probes(self, unit_id):
        """The unit's probes, each {"probe", "answer", "choices", "type", "unit"}."""
        return [v for what, _, v in _iter_records(self._unit_file(unit_id)) if what == "probe"]

    def documents(self, unit_id, split="val"):
        """The unit's documents in a split: "train", "val" or "all"."""
        docs = [t for _, t in _iter_documents(self._unit_file(unit_id))]
        if split == "all":
            return docs
        mask = _val_mask(unit_id, len(docs))
        return [d for d, v in zip(docs, mask) if v == (split == "val")]

    def tokens(self, unit_id, split="train"):
        """The unit's tokens in a split as a read-only 1-D memmap (documents joined with eot)."""
        self._unit_file(unit_id)
        path = self.dir / "shards" / f"{unit_id}.{split}.bin"
        if path.stat().st_size == 0:  # numpy cannot memmap an empty file
            return np.zeros(0, dtype=self.dtype)
        return np.memmap(path, dtype=self.dtype, mode="r")

    def verdicts(self):
        """unit id -> passed (bool) of its latest unit_verified event."""
        return {e["unit"]: bool(e["passed"]) for e in self.passport.events("unit_verified")}

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

    def check(self):
        """Verify the passport chain, the tokenizer and every unit copy and shard hash; raise on the first bad one."""
        n = self.passport.check()
        init = self.passport.events("init")
        if not init or init[0]["tokenizer_hash"] != self.tokenizer_hash:
            raise CurriculumError(f"{self.dir / 'tokenizer.tiktoken'}: the tokenizer does not match the "
                                  "passport's init event")
        for u, e in self.added.items():
            files = [(self.dir / "units" / f"{u}.jsonl", e["sha256"])]
            files += [(self.dir / "shards" / f"{u}.{s}.bin", e["shards"][s]) for s in ("train", "val")]
            for path, sha in files:
                if not path.is_file():
                    raise CurriculumError(f"{path}: missing (unit {u!r} was added)")
                if sha256_file(path) != sha:
                    raise CurriculumError(f"{path}: sha256 differs from its unit_added event (file changed)")
        return n

# -----------------------------------------------------------------------------
# init and add

def init(corpus_dir, files, vocab_size=4096, tokenizer="bpe", max_train_bytes=20_000_000):
    """Create a corpus dir with a tokenizer trained on the files' text (their primitive units', if any) and an
    init event (units not added)."""
    d = Path(corpus_dir)
    if d.exists() and any(d.iterdir()):
        raise CurriculumError(f"{d}: already exists and is not empty; choose a new corpus directory")
    if tokenizer not in ("bpe", "gpt2"):
        raise CurriculumError(f"unknown tokenizer {tokenizer!r} (expected bpe or gpt2)")
    infos = [_inspect(f) for f in files]
    # The BPE learns from the primitive units when there are any: they are what the base model reads,
    # and a token the base never reads keeps an untrained embedding. Tied to the output head, all such
    # embeddings are pushed the same way ("never the next token") until they are nearly one vector
    # (cosine 0.997 measured on the default world), and a LoRA on the frozen base cannot tell apart
    # the names they spell. Learned from primitive text, a new name is spelled in pieces the base knows.
    bpe_files = [i["path"] for i in infos if i["header"]["kind"] == "primitive"] or [i["path"] for i in infos]
    if tokenizer == "gpt2":
        enc = _gpt2()
        meta, rank_bytes = {"name": "gpt2", "type": "gpt2", "pattern": enc._pat_str,
                            "special_tokens": enc._special_tokens, "vocab_size": enc.n_vocab}, b""
    else:
        ranks = train_bpe(_training_texts(bpe_files, max_train_bytes), vocab_size)
        rank_bytes = _rank_file(ranks)
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
        Passport(tmp / "passport.jsonl").append("init", tokenizer=meta["name"], vocab_size=meta["vocab_size"],
                                                tokenizer_hash=_tokenizer_hash(meta, rank_bytes))
        os.replace(tmp, d)  # the corpus appears complete or not at all
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Corpus(d)


def _training_texts(files, max_bytes):
    """Documents and probe text of the files, stopping after max_bytes (a bounded sample)."""
    seen = 0
    for f in files:
        for what, _, v in _iter_records(f):
            texts = [v] if what == "document" else [v["probe"], *v["choices"]] if what == "probe" else []
            for t in texts:
                if seen >= max_bytes:
                    return
                seen += len(t.encode())
                yield t


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


def _needle_bytes(probe):
    """What a probe must not find verbatim in any document, normalized: prompt + " " + answer, and
    prompt + answer."""
    return [_normalize(probe["probe"] + sep + probe["answer"]).encode() for sep in (" ", "")]


class _LeakFinder:
    """Finds probe needles (_needle_bytes) in documents in one pass: the hash of every K-byte window
    is looked up among the needles' K-byte suffix hashes, a hit is checked against the whole needle's
    hash, and a match is confirmed byte for byte against the probe re-read from its file.

    A needle is held as 18 bytes, not as text: its suffix hash (8: the low bits give way to the
    needle's place, for the sort), a 32-bit hash of the whole (4), its length (2) and its probe's row
    (4: the probe's line, counted on over all files), in one table sorted by suffix hash, behind a
    filter of 2-4 bytes a needle. A 100M-token world has 1.4M needles; as Python objects, with the
    probe records, they took most of the 1.9 GB its add once peaked at. Needles shorter than K bytes
    or longer than 65,535 are rare and kept as bytes."""
    K = 24
    # Keys are window hashes times an odd constant (a bijection: equal stays equal). The rolling
    # hash alone is sum(byte_j * P^j) with P = 2^40 + 435: windows that differ only in their first
    # bytes differ only in its low bits, and the filter and the sorted keys look at the top bits.
    MIX = np.uint64(0x9E3779B97F4A7C15)

    def __init__(self, capacity=0):
        """capacity: the needles add() will be given (two a probe), if known: the table is then
        allocated once. Grown piece by piece, the small arrays fragment the heap (a 100M-token
        world's 26 MB of needles took 46 MB that way)."""
        self.files, self.new, self.first_row, self.odd, self.n = [], [], [0], [], 0
        self.cols = {"key": np.empty(capacity, np.uint64), "full": np.empty(capacity, np.uint32),
                     "length": np.empty(capacity, np.uint16), "row": np.empty(capacity, np.uint32)}

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
        # the whole needle's hash only screens what is then compared byte for byte: 32 bits will do
        full = _span_hashes(h, ends - lengths, ends).astype(np.uint32)
        return dict(key=_span_hashes(h, ends - cls.K, ends) * cls.MIX, full=full, length=lengths.astype(np.uint16),
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
        """Sort the needles by suffix hash and build the first filter; call after the last add."""
        n, step = self.n, 1 << 18
        self.cols = {k: v[:n] for k, v in self.cols.items()}
        keys = self.keys = self.cols.pop("key")
        # a first filter: two bits set per needle, at two slices of its suffix hash, in 16-32 bits
        # per needle; a window goes on to the binary search only if both its bits are set (~1% of
        # them, or fewer). With one bit and a fixed 2^22 of them, 1.4M needles let 30% of all
        # windows through, and a 100M-token world spent 74 s in the search.
        self.bits = min(max(n.bit_length() + 4, 20), 32)
        self.bitmap = np.zeros(1 << (self.bits - 3), np.uint8)
        for i in range(0, n, step):
            for at in self._bits_of(keys[i:i + step]):
                np.bitwise_or.at(self.bitmap, at >> np.uint64(3), (1 << (at & np.uint64(7))).astype(np.uint8))
        # Sorted without an argsort (8 bytes a needle): the key's low `shift` bits are traded for the
        # needle's index, the keys sorted in place, and each column gathered through those bits. A
        # key is only a screen (matches are confirmed), so its top 64 - shift bits will do.
        self.shift = np.uint64(max(n - 1, 1).bit_length())
        self.low = np.uint64((1 << int(self.shift)) - 1)
        for i in range(0, n, step):
            keys[i:i + step] &= ~self.low
            keys[i:i + step] |= np.arange(i, min(i + step, n), dtype=np.uint64)
        keys.sort()
        for k, col in self.cols.items():
            self.cols[k] = np.empty_like(col)
            for i in range(0, n, step):
                self.cols[k][i:i + step] = col[keys[i:i + step] & self.low]
        self.first_row, self.new = np.array(self.first_row, np.uint64), np.array(self.new)
        return self

    def _bits_of(self, hashes):
        """The filter's two bit positions for each hash: its top `bits` bits and the `bits` below."""
        b = np.uint64(self.bits)
        return hashes >> (np.uint64(64) - b), (hashes >> (np.uint64(64) - 2 * b)) & np.uint64((1 << self.bits) - 1)

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
        for no2, rec in _scan_unit(self.files[f]):
            if no2 == no:
                return span in _needle_bytes(rec)
        return False

    def find(self, buf, new_only=False):
        """(probe location, byte offset) of a needle found in buf, or None."""
        for nb, f, no in self.odd:
            i = buf.find(nb) if self.new[f] or not new_only else -1
            if i >= 0:
                return self._where(f, no), i
        keys = self.keys
        if len(keys) == 0 or len(buf) < self.K:
            return None
        h = _prefix_hashes(buf)
        win = self.window_hashes(h)
        cand = np.nonzero(self._may_hold(win))[0]
        # keys are sorted once: a binary search per candidate, never a sort per chunk (np.isin sorts
        # both sides on every call, which dominated adding a 100M-token corpus)
        top = win[cand] & ~self.low
        lo, hi = np.searchsorted(keys, top, "left"), np.searchsorted(keys, top | self.low, "right")
        count = hi - lo  # needles whose suffix ends each candidate window: a common suffix has many
        pairs = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
        end, i = np.repeat(cand + self.K, count), np.repeat(lo, count) + pairs  # (where it would end, needle)
        c = {k: v[i] for k, v in self.cols.items()}
        c["file"] = np.searchsorted(self.first_row, c["row"], "right") - 1
        keep = (c["length"] <= end) & (self.new[c["file"]] | (not new_only))
        end, c = end[keep], {k: v[keep] for k, v in c.items()}
        start = end - c["length"].astype(np.int64)
        for j in np.nonzero(_span_hashes(h, start, end).astype(np.uint32) == c["full"])[0]:  # in the text's order
            f = int(c["file"][j])
            no = int(c["row"][j]) - int(self.first_row[f])
            if self._confirm(f, no, buf[start[j]:end[j]]):
                return self._where(f, no), int(start[j])
        return None

    def scan(self, path, new_only=False):
        """Raise CurriculumError if any document of the unit file at path contains a needle."""
        for chunk in _chunks(_iter_documents(path)):
            docs = [_normalize(t).encode() for _, t in chunk]
            buf = b"\n".join(docs)  # normalized needles hold no newline, so matches never cross documents
            hit = self.find(buf, new_only)
            if hit:
                starts = np.cumsum([0] + [len(d) + 1 for d in docs])
                doc_line = chunk[int(np.searchsorted(starts, hit[1], side="right")) - 1][0]
                raise CurriculumError(f"{hit[0]}: leakage: the probe's prompt + answer appears verbatim in a "
                                      f"document ({path}:{doc_line}); rephrase the probe or the document")


def _check_leakage(corpus, infos, budget=None):
    """No new probe's needle in any document, old or new; old probes need only the new documents.

    At most `budget` needles (LEAK_BUDGET; 18 bytes each, ~26 while they are sorted) are held at a
    time, whole units at a time: past that the probes are taken in batches, each with a pass over the
    documents it can leak into, so a corpus that outgrows the budget costs passes, never memory."""
    budget = budget or LEAK_BUDGET
    new_docs = [i["path"] for i in infos]
    old_docs = [corpus._unit_file(u) for u in corpus.units]
    sources = [(p, True, 2 * i["n_probes"]) for p, i in zip(new_docs, infos)]  # two needles a probe
    sources += [(p, False, 2 * corpus.added[u]["probes"]) for p, u in zip(old_docs, corpus.units)]
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
        finder = _LeakFinder(sum(k for _, _, k in batch))
        for path, new, _ in batch:
            probes = ((no, p) for what, no, p in _iter_records(path) if what == "probe")
            finder.add(path, _LeakFinder.hash_needles(probes), new=new)
        finder.freeze()
        if any(new for _, new, _ in batch):  # old documents can only leak new probes
            for path in old_docs:
                finder.scan(path, new_only=True)
        for path in new_docs:
            finder.scan(path)


def _write_unit(corpus, info):
    """Tokenize a unit into its train/val shards and copy its file, each atomically; return shard facts."""
    uid, path, enc = info["header"]["unit"], info["path"], corpus.tokenizer
    mask, eot, base = _val_mask(uid, info["n_docs"]), enc.eot_token, corpus.dir / "shards"
    tmp = {s: base / f"{uid}.{s}.bin.tmp-{os.getpid()}" for s in ("train", "val")}
    files = {s: open(p, "wb") for s, p in tmp.items()}
    sha, count, i = {s: hashlib.sha256() for s in tmp}, {s: 0 for s in tmp}, 0
    try:
        # each document's tokens made an array at once: tiktoken returns Python ints (~36 bytes a
        # token), and 4M-character chunks of them peaked ~60 MB higher than these do
        for chunk in _chunks(_iter_documents(path)):
            flat = {"train": [], "val": []}
            for t in enc.encode_ordinary_batch([t for _, t in chunk]):
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
    copy, h = corpus.dir / "units" / f"{uid}.jsonl", hashlib.sha256()
    with open(path, "rb") as src, open(f"{copy}.tmp-{os.getpid()}", "wb") as dst:  # streamed: big units fit
        for block in iter(lambda: src.read(1 << 20), b""):
            h.update(block)
            dst.write(block)
        dst.flush()
        os.fsync(dst.fileno())
    if h.hexdigest() != info["sha256"]:
        raise CurriculumError(f"{path}: the file changed while it was being added; run add again")
    os.replace(f"{copy}.tmp-{os.getpid()}", copy)
    fsync_dir(copy.parent)
    return {"tokens": count["train"], "val_tokens": count["val"], "shards": {s: h.hexdigest() for s, h in sha.items()}}


def add(corpus_dir, files, log=print, leak_budget=None):
    """Validate unit files and add them all or none (shards, unit copy, then a unit_added event each,
    the commit point, in curriculum order). Files already added unchanged are skipped. Return added ids.
    leak_budget: probe needles held at once by the leakage check (default LEAK_BUDGET)."""
    if leak_budget is not None and leak_budget < 1:
        raise CurriculumError(f"leak budget {leak_budget}: it must be at least 1 (needles held at once)")
    corpus = Corpus(corpus_dir)
    corpus.passport.check()  # never extend a broken chain
    infos, seen, new = [_inspect(f) for f in files], {}, {}
    for info in infos:
        uid, where = info["header"]["unit"], f"{info['path']}:{info['line']}"
        if uid in seen:
            raise CurriculumError(f"{where}: duplicate unit id {uid!r} (also in {seen[uid]}); "
                                  "give each unit its own id")
        seen[uid] = where
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
    order = _topo_order({u: i["header"] for u, i in new.items()},
                        {u: f"{i['path']}:{i['line']}" for u, i in new.items()})
    _check_leakage(corpus, list(new.values()), leak_budget)
    crash_after = int(os.environ.get("ACCRETE_TEST_CRASH_AFTER", -1))  # tests: simulate kill -9 mid-add
    for n, uid in enumerate(order):
        info = new[uid]
        facts = _write_unit(corpus, info)
        if n == crash_after:  # files written, event not yet: a leftover the next add overwrites
            os.kill(os.getpid(), signal.SIGKILL)
        h = next(_iter_records(corpus.dir / "units" / f"{uid}.jsonl"))[2]  # whole, from the copy just hash-checked
        corpus.passport.append("unit_added", unit=uid, file=info["path"].name, sha256=info["sha256"],
                               level=h["level"], kind=h["kind"], documents=info["n_docs"],
                               probes=info["n_probes"], header=h, **facts)
        log(f"{uid}: added ({facts['tokens']:,} train + {facts['val_tokens']:,} val tokens)")
    return order

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
    """Some units' token memmaps, sampled as windows: a unit chosen in proportion to its tokens,
    then a uniform window in it; a unit shorter than the window wraps into the next units."""

    def __init__(self, corpus, units, split):
        self.units = [u for u in units if len(corpus.tokens(u, split))]
        self.arrays = [corpus.tokens(u, split) for u in self.units]
        self.ends = np.cumsum([len(a) for a in self.arrays], dtype=np.int64)
        self.total = int(self.ends[-1]) if self.units else 0

    def window(self, u_unit, u_offset, n):
        k = min(int(np.searchsorted(self.ends, u_unit * self.total, side="right")), len(self.units) - 1)
        a, first = self.arrays[k], self.units[k]
        if len(a) >= n:
            start = int(u_offset * (len(a) - n + 1))
            return first, a[start:start + n]
        out, filled = np.empty(n, np.int64), 0
        while filled < n:
            a = self.arrays[k]
            take = min(n - filled, len(a))
            out[filled:filled + take] = a[:take]
            filled, k = filled + take, (k + 1) % len(self.units)
        return first, out


class Stream:
    """Deterministic (x, y) batches over a selection of units with a tiny resumable cursor {"batch": i}.

    replay: the share of knowledge rows drawn from earlier curriculum stages (stage 2 on), or, with
    replay_units, from those units at every stage (rehearsal: e.g. the units verified before the one
    an adapter learns, so that learning it does not erase them)."""

    def __init__(self, corpus, units, batch_size, block_size, primitive_share=0.0, order="curriculum",
                 replay=0.0, token_budget=None, seed=0, split="train", replay_units=None):
        corpus = corpus if isinstance(corpus, Corpus) else Corpus(corpus)
        if order not in ("curriculum", "shuffled"):
            raise CurriculumError(f"unknown order {order!r} (expected curriculum or shuffled)")
        if not (0 <= primitive_share <= 1 and 0 <= replay <= 1) or batch_size < 1 or block_size < 1:
            raise CurriculumError("primitive_share and replay must be in [0, 1], batch_size and block_size >= 1")
        ids = select(corpus, units)
        know = [u for u in ids if corpus.units[u]["kind"] == "knowledge"]
        prim = [u for u in ids if corpus.units[u]["kind"] == "primitive"]
        if primitive_share > 0 and not prim:  # a share of primitive text without naming any: all of it
            prim = corpus.primitive_units()
        ntok = lambda us: sum(len(corpus.tokens(u, split)) for u in us)
        k_tok, p_tok = ntok(know), ntok(prim)
        # share of rows from primitive units: as asked; all of them without knowledge units; their
        # natural token proportion when primitive units are selected with share 0
        share = 1.0 if not know else primitive_share if primitive_share > 0 else p_tok / (k_tok + p_tok)
        if (share > 0 and p_tok == 0) or (share < 1 and k_tok == 0):
            raise CurriculumError(f"the selection {units!r} has no {split} tokens to serve")
        levels = sorted({corpus.units[u]["level"] for u in know}) if order == "curriculum" else [None]
        stages = [[u for u in know if lv is None or corpus.units[u]["level"] == lv] for lv in levels] if know else []
        epoch = k_tok / (1 - share) if know and share < 1 else p_tok
        self.token_budget = int(token_budget or epoch)
        self.total_rows = max(1, math.ceil(self.token_budget / block_size))
        cum = np.cumsum([ntok(s) for s in stages]) / max(k_tok, 1)
        self.bounds = np.round(cum * self.total_rows).astype(np.int64)  # stage s owns rows [bounds[s-1], bounds[s])
        self.pools = [_Pool(corpus, s, split) for s in stages]
        self.replay_pools = [None] + [_Pool(corpus, sum(stages[:s], []), split) for s in range(1, len(stages))]
        replay_units = select(corpus, replay_units) if replay_units else []
        if replay_units:  # one rehearsal pool for every stage (a unit with no tokens in this split is skipped)
            pool = _Pool(corpus, replay_units, split)
            self.replay_pools = [pool if pool.total else None] * len(stages)
        self.prim_pool = _Pool(corpus, prim, split) if share > 0 else None
        self.B, self.T, self.share, self.replay, self.seed, self.batch = batch_size, block_size, share, replay, seed, 0
        self.last_units = []
        self.selection = {"units": know, "primitive_units": prim, "primitive_share": share, "order": order,
                          "replay": replay, "replay_units": replay_units, "token_budget": self.token_budget, "seed": seed, "split": split,
                          "batch_size": batch_size, "block_size": block_size, "tokenizer_hash": corpus.tokenizer_hash,
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

    def _pool(self, r, u_replay):
        """The pool row r draws from: primitive rows spread evenly (exact share), else its stage's."""
        if math.floor((r + 1) * self.share) > math.floor(r * self.share):
            return self.prim_pool
        s = int(np.searchsorted(self.bounds, r % self.total_rows, side="right"))
        s = min(s, len(self.pools) - 1)
        return self.replay_pools[s] if self.replay_pools[s] and u_replay < self.replay else self.pools[s]

    def next_batch(self):
        """(x, y) int64 arrays of shape (B, T); y is x shifted by one."""
        B, T = self.B, self.T
        u = np.random.default_rng([self.seed, self.batch]).random((3, B))  # counter-based: resumable by index
        rows, self.last_units = np.empty((B, T + 1), np.int64), []
        for j in range(B):
            unit, rows[j] = self._pool(self.batch * B + j, u[0, j]).window(u[1, j], u[2, j], T + 1)
            self.last_units.append(unit)
        self.batch += 1
        return np.ascontiguousarray(rows[:, :-1]), np.ascontiguousarray(rows[:, 1:])

    def __iter__(self):
        while True:
            yield self.next_batch()

    def state_dict(self):
        """The cursor: the next batch index (batches are a function of seed and index)."""
        return {"batch": self.batch, "selection_hash": self.selection_hash}

    def load_state_dict(self, d):
        """Resume from state_dict(); refuses a cursor from a different selection."""
        if d.get("selection_hash", self.selection_hash) != self.selection_hash:
            raise CurriculumError("stream cursor belongs to a different selection; "
                                  "resume with the same units and options")
        self.batch = int(d["batch"])


def stream(corpus, units, batch_size, block_size, primitive_share=0.0, order="curriculum", replay=0.0,
           token_budget=None, seed=0, split="train", replay_units=None):
    """A Stream of (x, y) batches for train.py over a selection of units (see Stream)."""
    return Stream(corpus, units, batch_size, block_size, primitive_share, order, replay, token_budget, seed, split,
                  replay_units)

# -----------------------------------------------------------------------------
# reports: map and status

def _status_of(corpus, u, verdicts):
    if corpus.units[u]["kind"] == "primitive":
        return "primitive"
    return {True: "verified", False: "rejected"}.get(verdicts.get(u), "untested")


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
    print(f"  primitive share of a scratch pretrain: {100 * s['primitive_share']:.2f}%")

# -----------------------------------------------------------------------------

def main(argv=None):
    p = argparse.ArgumentParser(description="accrete curriculum: grow a corpus of verified units "
                                "(init, add, map, status, check)")
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("init", help="create a corpus and train its tokenizer on the files' text (the primitive units' when there are any)")
    a.add_argument("corpus")
    a.add_argument("files", nargs="+")
    a.add_argument("--vocab-size", type=int, default=4096)
    a.add_argument("--tokenizer", choices=("bpe", "gpt2"), default="bpe")
    a.add_argument("--max-train-bytes", type=int, default=20_000_000, help="train the BPE on this much text at most")
    a = sub.add_parser("add", help="validate unit files and add them all or none")
    a.add_argument("corpus")
    a.add_argument("files", nargs="+")
    a.add_argument("--leak-budget", type=int, default=LEAK_BUDGET,
                   help="probe needles (two a probe, ~30 bytes each) the leakage check holds at once; "
                        "past it, one more pass over the documents per budget's worth")
    a = sub.add_parser("map", help="show the ontology map in curriculum order")
    a.add_argument("corpus")
    a.add_argument("--dot", action="store_true", help="print Graphviz dot")
    a = sub.add_parser("status", help="sizes, verification and progress toward a target")
    a.add_argument("corpus")
    a.add_argument("--target", type=int, default=100_000_000)
    a.add_argument("--json", action="store_true")
    a = sub.add_parser("check", help="verify the passport chain and every file hash (exit 0 ok, 2 bad)")
    a.add_argument("corpus")
    a.add_argument("--repair", action="store_true", help="first drop an incomplete final passport line")
    args = p.parse_args(argv)
    try:
        if args.cmd == "init":
            t0 = time.time()
            c = init(args.corpus, args.files, args.vocab_size, args.tokenizer, args.max_train_bytes)
            print(f"{c.dir}: tokenizer {c.tokenizer.name} ({c.vocab_size} tokens) in {time.time() - t0:.1f}s; "
                  f"now run `python curriculum.py add {c.dir} FILES...`")
        elif args.cmd == "add":
            add(args.corpus, args.files, leak_budget=args.leak_budget)
        elif args.cmd == "map":
            print(render_map(Corpus(args.corpus), dot=args.dot))
        elif args.cmd == "status":
            s = status(Corpus(args.corpus), args.target)
            print(json.dumps(s, indent=1)) if args.json else _print_status(s)
        elif args.cmd == "check":
            passport = Passport(Path(args.corpus) / "passport.jsonl")
            if args.repair:
                dropped = passport.repair()
                if dropped:
                    print(f"repaired: dropped an incomplete final passport line ({dropped} bytes)")
            if not passport.path.is_file():
                raise CurriculumError(f"{args.corpus}: not a corpus (no passport.jsonl)")
            passport.check()  # first, so that a bad line is named before anything parses it
            c = Corpus(args.corpus)
            print(f"ok: {c.check()} events, {len(c.units)} units")
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `status | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
    return 0


if __name__ == "__main__":
    sys.exit(main())
