"""
The corpus tokenizer: a byte-level BPE trained on the corpus's own text (as nanochat trains its
own), stored as a standard tiktoken rank file and used through tiktoken.Encoding; or GPT-2's, for
a base of real GPT-2 weights. The last token id is <|endoftext|>.
"""
import argparse
import base64
import collections
import hashlib
import heapq
import json
from pathlib import Path

import regex
import tiktoken

from common import GPT2_TOKENIZER_HASH, fail, stops_in_one_line
from units import CurriculumError

# GPT-4 (cl100k) split pattern: text is cut into words, numbers, punctuation runs and spaces
# before BPE, so merges never cross those boundaries.
SPLIT_PATTERN = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
EOT = "<|endoftext|>"
MIN_VOCAB = 257  # the 256 bytes and EOT


def train_bpe(texts, vocab_size, pattern=SPLIT_PATTERN):
    """Train a byte-level BPE on an iterable of strings; return {token bytes: rank} with vocab_size-1
    ranks (the 256 bytes first, then merges in order); the last id is left for <|endoftext|>."""
    if vocab_size < MIN_VOCAB:
        raise CurriculumError(f"vocab size {vocab_size} is too small: it must be at least {MIN_VOCAB} (256 bytes + eot)")
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
                if new in p:  # the word's other pairs were in it before, and are indexed already
                    where[p].append(wi)
            words[wi] = out
        for p, b in before.items():
            c = pair_count.get(p, 0)
            if c > b:
                heapq.heappush(heap, (-c, p))
            elif c <= 0:
                pair_count.pop(p, None)
    return {b: i for i, b in enumerate(vocab)}


def rank_file(ranks):
    """The tiktoken rank file of {token bytes: rank}: "base64token rank" lines, in rank order."""
    return b"".join(base64.b64encode(b) + b" %d\n" % r for b, r in sorted(ranks.items(), key=lambda kv: kv[1]))


def tokenizer_hash(meta, rank_bytes):
    """sha256 of what makes the tokenizer: its ranks, split pattern and special tokens (gpt2: its name)."""
    if meta["type"] == "gpt2":
        return GPT2_TOKENIZER_HASH
    specials = json.dumps(meta["special_tokens"], sort_keys=True).encode()
    return hashlib.sha256(rank_bytes + b"\0" + meta["pattern"].encode() + b"\0" + specials).hexdigest()


def gpt2():
    """GPT-2's tokenizer from tiktoken's cache; CurriculumError when it cannot be had offline."""
    try:
        return tiktoken.get_encoding("gpt2")
    except Exception as e:  # tiktoken downloads its files on first use; offline that fails
        raise CurriculumError(f"the gpt2 tokenizer is unavailable ({type(e).__name__}): tiktoken needs its "
                              "cached gpt2 files (set TIKTOKEN_CACHE_DIR, or run once online); "
                              "or use --tokenizer bpe") from None


def read_tokenizer(corpus_dir):
    """(tiktoken.Encoding, tokenizer hash) of a corpus directory."""
    d = Path(corpus_dir)
    try:
        meta = json.loads((d / "tokenizer.json").read_text())
    except FileNotFoundError:
        raise CurriculumError(f"{d}: not a corpus (no tokenizer.json); create one with "
                              f"`python curriculum.py init {d} FILES...`") from None
    except OSError as e:  # a file given where the corpus directory goes, say
        raise CurriculumError(f"{d}: cannot be read as a corpus ({e.strerror})") from None
    except ValueError as e:  # bad JSON or UTF-8
        raise CurriculumError(f"{d / 'tokenizer.json'}: not a tokenizer description ({e})") from None
    missing = [k for k in ("type", "name", "pattern", "special_tokens") if not isinstance(meta, dict) or k not in meta]
    if missing:
        raise CurriculumError(f"{d / 'tokenizer.json'}: not a tokenizer description (no {', '.join(missing)})")
    if meta["type"] == "gpt2":
        return gpt2(), tokenizer_hash(meta, b"")
    try:
        rank_bytes = (d / "tokenizer.tiktoken").read_bytes()
    except OSError as e:
        raise CurriculumError(f"{d / 'tokenizer.tiktoken'}: cannot read it ({e.strerror})") from None
    ranks, ids = {}, set()
    for no, line in enumerate(rank_bytes.splitlines(), 1):
        try:
            tok, rank = line.split()
            tok, rank = base64.b64decode(tok), int(rank)
        except ValueError:
            raise CurriculumError(f"{d / 'tokenizer.tiktoken'}:{no}: not a 'base64token rank' line") from None
        # checked here: tiktoken's Rust core panics (a backtrace, not an error) on repeats
        if tok in ranks or rank in ids or not 0 <= rank < 1 << 32:
            raise CurriculumError(f"{d / 'tokenizer.tiktoken'}:{no}: a repeated token or rank, or a rank out of range")
        ranks[tok] = rank
        ids.add(rank)
    # tiktoken spells what no merge covers byte by byte, and panics on a byte without a token
    missing = [b for b in range(256) if bytes([b]) not in ranks]
    if missing:
        raise CurriculumError(f"{d / 'tokenizer.tiktoken'}: no token for the single byte {missing[0]} "
                              f"(bytes without one: {len(missing)} of 256); a byte-level BPE needs a token for each")
    specials = meta["special_tokens"]
    if not (isinstance(specials, dict) and all(isinstance(k, str) and isinstance(v, int) and v not in ids
                                               and 0 <= v < 1 << 32 for k, v in specials.items())
            and len(set(specials.values())) == len(specials) and isinstance(meta["pattern"], str)):
        raise CurriculumError(f"{d / 'tokenizer.json'}: special_tokens must map names to ids of their own, and "
                              "pattern must be a string")
    try:
        enc = tiktoken.Encoding(name=str(meta["name"]), pat_str=meta["pattern"], mergeable_ranks=ranks,
                                special_tokens=specials)
    except ValueError as e:  # a pattern that is no regular expression
        raise CurriculumError(f"{d / 'tokenizer.json'}: not a tokenizer description ({e})") from None
    return enc, tokenizer_hash(meta, rank_bytes)


def load_tokenizer(corpus_dir):
    """The corpus's tokenizer as a tiktoken.Encoding (eot_token = n_vocab - 1)."""
    return read_tokenizer(corpus_dir)[0]



@stops_in_one_line("it writes nothing; run it again")
def main(argv=None):
    p = argparse.ArgumentParser(description="Show how a corpus's tokenizer splits a text: each token's id "
                                "and bytes.")
    p.add_argument("corpus", help="corpus directory (made by `python curriculum.py init`)")
    p.add_argument("text", help="the text to tokenize")
    args = p.parse_args(argv)
    try:
        args.text.encode("utf-8")
    except UnicodeEncodeError:  # bytes of the command line that are not UTF-8 (Python keeps them as surrogates)
        fail(f"text {ascii(args.text)}: holds bytes that are not UTF-8, which no unit's text can hold; the "
             "tokenizer would show U+FFFD in their place")
    try:
        enc = load_tokenizer(args.corpus)
    except CurriculumError as e:
        fail(e)
    for t in enc.encode_ordinary(args.text):
        print(t, enc.decode_single_token_bytes(t))


if __name__ == "__main__":
    main()
