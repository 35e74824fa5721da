"""Tests for bpe.py: BPE training against its definition, the rank file, and the corpus tokenizer."""
import json
import random
import sys
from collections import Counter
from pathlib import Path

import pytest
import regex
import tiktoken

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
import curriculum  # noqa: E402
from bpe import EOT, SPLIT_PATTERN, load_tokenizer, read_tokenizer, train_bpe  # noqa: E402
from unit_files import write_unit  # noqa: E402
from units import CurriculumError  # noqa: E402


@pytest.fixture
def corpus(tmp_path):
    """A corpus (no units added) whose 300-token BPE learned from one primitive unit."""
    return curriculum.init(tmp_path / "corpus", [write_unit(tmp_path, "prim", kind="primitive", n_docs=40)],
                           vocab_size=300)


def test_tokenizer_round_trips_any_text(corpus):
    enc = corpus.tokenizer
    rng = random.Random(0)
    texts = ["Привет, мир! Ёжик в тумане.", "emoji 🙂🚀👩‍👩‍👧 and flags 🇺🇦", "漢字かなカナ 한국어 中文字符",
             "tabs\tand\r\nnewlines\n\n  spaces   ", "", bytes(rng.randrange(256) for _ in range(5000)).decode("utf-8", "replace")]
    for t in texts:
        assert enc.decode(enc.encode_ordinary(t)) == t
        assert enc.decode_bytes(enc.encode_ordinary(t)) == t.encode("utf-8")


def test_tokenizer_files_ranks_and_eot(corpus):
    lines = (corpus.dir / "tokenizer.tiktoken").read_text().splitlines()
    assert len(lines) == 299 and lines[65] == "QQ== 65"  # base64 token, space, rank; bytes are ranks 0..255
    meta = json.loads((corpus.dir / "tokenizer.json").read_text())
    assert meta["vocab_size"] == corpus.vocab_size == 300 and meta["pattern"] == SPLIT_PATTERN
    assert corpus.tokenizer.eot_token == corpus.vocab_size - 1 == meta["special_tokens"][EOT]
    assert load_tokenizer(corpus.dir).encode("hi<|endoftext|>", allowed_special="all")[-1] == 299
    assert read_tokenizer(corpus.dir)[1] == corpus.tokenizer_hash and len(corpus.tokenizer_hash) == 64


def test_a_directory_without_a_tokenizer_is_not_a_corpus(tmp_path):
    with pytest.raises(CurriculumError, match=f"{tmp_path}: not a corpus \\(no tokenizer.json\\)"):
        load_tokenizer(tmp_path)


def test_a_bad_rank_line_is_named(corpus):
    path = corpus.dir / "tokenizer.tiktoken"
    path.write_text(path.read_text().replace("QQ== 65\n", "QQ==65\n"))
    with pytest.raises(CurriculumError, match="tokenizer.tiktoken:66: not a 'base64token rank' line"):
        load_tokenizer(corpus.dir)


@pytest.mark.parametrize("ranks, specials, pattern, where", [
    (("QQ== 65\n", "QQ== -5\n"), None, None, "tokenizer.tiktoken:66: a repeated token or rank, or a rank out of range"),
    (("QQ== 65\n", "QQ== 66\n"), None, None, "tokenizer.tiktoken:67: a repeated token or rank"),
    (("QQ== 65\n", "QQ== 65\nQQ== 65\n"), None, None, "tokenizer.tiktoken:67: a repeated token or rank"),
    (("Zg== 102\n", ""), None, None, "tokenizer.tiktoken: no token for the single byte 102"),  # b"f" gone
    (None, {EOT: "x"}, None, "tokenizer.json: special_tokens must map names to ids of their own"),
    (None, {EOT: 65}, None, "tokenizer.json: special_tokens must map names to ids of their own"),
    (None, None, "(\\S+", "tokenizer.json: not a tokenizer description"),
])
def test_a_damaged_tokenizer_is_named_not_a_panic(corpus, ranks, specials, pattern, where, capfd):
    """tiktoken's Rust core panics on a repeated rank (a backtrace on stderr): the files are checked first."""
    rank_file, meta_file = corpus.dir / "tokenizer.tiktoken", corpus.dir / "tokenizer.json"
    if ranks:
        rank_file.write_text(rank_file.read_text().replace(*ranks))
    meta = json.loads(meta_file.read_text())
    meta_file.write_text(json.dumps(dict(meta, special_tokens=specials or meta["special_tokens"],
                                         pattern=pattern or meta["pattern"])))
    with pytest.raises(CurriculumError, match=where.replace("(", "\\(")):
        load_tokenizer(corpus.dir)
    assert "panicked" not in capfd.readouterr().err


def test_the_cli_names_a_rank_file_lacking_a_byte_in_one_line_not_a_panic(corpus, capsys):
    """tiktoken loads ranks without a single byte and panics (a long backtrace) on the first text that needs it."""
    import bpe
    rank_file = corpus.dir / "tokenizer.tiktoken"
    rank_file.write_text(rank_file.read_text().replace("Zg== 102\n", ""))
    with pytest.raises(SystemExit) as e:
        bpe.main([str(corpus.dir), "fff"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err == f"error: {rank_file}: no token for the single byte 102 (bytes without " \
                                        "one: 1 of 256); a byte-level BPE needs a token for each\n"


def test_the_cli_refuses_a_text_whose_bytes_are_not_utf8(corpus, capsys):
    """A command line's bytes that are not UTF-8 reach Python as surrogates, which the tokenizer shows as U+FFFD."""
    import bpe
    with pytest.raises(SystemExit) as e:
        bpe.main([str(corpus.dir), "a\udcff"])  # what `bpe.py CORPUS $'a\\xff'` passes
    assert e.value.code == 2 and capsys.readouterr().err == (
        "error: text 'a\\udcff': holds bytes that are not UTF-8, which no unit's text can hold; the tokenizer would "
        "show U+FFFD in their place\n")


def test_bpe_trains_a_small_vocab_fast_and_every_token_encodes_to_itself():
    texts = [f"The herd {i} grazes by the river, and the river sings {i * 7}." for i in range(2000)]
    ranks = train_bpe(texts, 300)
    assert len(ranks) == 299 and sorted(ranks.values()) == list(range(299))
    assert all(ranks[bytes([i])] == i for i in range(256))
    enc = tiktoken.Encoding("t", pat_str=SPLIT_PATTERN, mergeable_ranks=ranks, special_tokens={EOT: 299})
    for b, r in ranks.items():
        assert enc.decode_single_token_bytes(r) == b
    assert len(enc.encode_ordinary(texts[5])) < len(texts[5].encode()) / 2


def test_bpe_refuses_a_vocab_without_room_for_the_bytes():
    with pytest.raises(CurriculumError, match="vocab size 256 is too small"):
        train_bpe(["abc"], 256)


def naive_bpe(texts, vocab_size):
    """The definition train_bpe must meet, without its indexes: count every pair of every chunk, merge
    the most frequent (ties: the smallest pair), repeat."""
    counts = Counter(w for t in texts for w in regex.findall(SPLIT_PATTERN, t))
    words, vocab = {tuple(w.encode()): f for w, f in counts.items()}, [bytes([i]) for i in range(256)]
    while len(vocab) < vocab_size - 1:
        pairs = Counter()
        for w, f in words.items():
            for p in zip(w, w[1:]):
                pairs[p] += f
        if not pairs:
            break
        pair = min(pairs, key=lambda p: (-pairs[p], p))
        merged = vocab[pair[0]] + vocab[pair[1]]
        new = vocab.index(merged) if merged in vocab else len(vocab)
        vocab += [merged] if new == len(vocab) else []
        merged_words = Counter()
        for w, f in words.items():
            out, i = [], 0
            while i < len(w):
                if w[i:i + 2] == pair:
                    out.append(new)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            merged_words[tuple(out)] += f
        words = merged_words
    return {b: i for i, b in enumerate(vocab)}


def test_bpe_merges_exactly_as_the_definition():
    """Repeated letters (aaaa: overlapping pairs), shared suffixes and two paths to the same bytes."""
    rng = random.Random(3)
    texts = ["".join(rng.choice(["a", "aa", "ab", "ba", "b", " ", "the", " and", "x"]) for _ in range(60))
             for _ in range(300)]
    for vocab_size in (270, 330, 420):
        assert train_bpe(texts, vocab_size) == naive_bpe(texts, vocab_size)


def test_gpt2_tokenizer_unavailable_offline_fails_clearly_and_makes_no_corpus(tmp_path, monkeypatch):
    import bpe

    def offline(name):
        raise ConnectionError(f"cannot fetch {name}")
    monkeypatch.setattr(tiktoken, "get_encoding", offline)
    says = ("the gpt2 tokenizer is unavailable (ConnectionError): tiktoken needs its cached gpt2 files "
            "(set TIKTOKEN_CACHE_DIR, or run once online); or use --tokenizer bpe")
    with pytest.raises(CurriculumError) as e:
        bpe.gpt2()
    assert str(e.value) == says and e.value.__suppress_context__  # one line, no download traceback
    with pytest.raises(CurriculumError) as e:
        curriculum.init(tmp_path / "g", [write_unit(tmp_path, "u")], tokenizer="gpt2")
    assert str(e.value) == says and not (tmp_path / "g").exists() and list(tmp_path.iterdir()) == [tmp_path / "u.jsonl"]


def test_gpt2_tokenizer_is_tiktoken_s_gpt2_encoding_and_a_corpus_is_made_with_it(tmp_path, monkeypatch):
    """tiktoken's own gpt2 files need the network or its cache: a small byte-level encoding stands in
    for what tiktoken.get_encoding("gpt2") returns."""
    import bpe
    stub = tiktoken.Encoding("gpt2", pat_str=SPLIT_PATTERN, mergeable_ranks={bytes([i]): i for i in range(256)},
                             special_tokens={EOT: 256})
    asked = []
    monkeypatch.setattr(tiktoken, "get_encoding", lambda name: asked.append(name) or stub)
    assert bpe.gpt2() is stub and asked == ["gpt2"]
    c = curriculum.init(tmp_path / "g", [write_unit(tmp_path, "u")], tokenizer="gpt2")
    meta = json.loads((tmp_path / "g" / "tokenizer.json").read_text())
    assert meta == {"name": "gpt2", "type": "gpt2", "pattern": SPLIT_PATTERN, "special_tokens": {EOT: 256},
                    "vocab_size": 257}
    assert not (tmp_path / "g" / "tokenizer.tiktoken").exists()  # gpt2's ranks are tiktoken's, not the corpus's
    assert c.tokenizer is stub and (c.vocab_size, c.tokenizer.eot_token) == (257, 256)
    assert read_tokenizer(tmp_path / "g")[0] is stub and set(asked) == {"gpt2"}
