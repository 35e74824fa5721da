"""
Every model of accrete, as numbers on the same probes: multiple-choice accuracy and greedy exact
match (with chance levels and 95% intervals), perplexity and bits per byte, the per-adapter
verification gate that the passport records, and the stage comparison (scored here, written to
report.md / report.json / report.png by report.py, which needs no torch).

    python evaluate.py score   CORPUS --model CKPT[+ADAPTER]
    python evaluate.py verify  CORPUS --unit U --model CKPT --adapter ADAPTER   # exit 0 pass, 1 fail, 2 error
    python evaluate.py compare CORPUS base=CKPT lora=CKPT+ADAPTER ... --out DIR
    python evaluate.py seeds   seed-*/report/report.json --out DIR   # the same as report.py seeds
    python evaluate.py sample  --corpus CORPUS --model CKPT --prompt "The capital of"

Scoring normalization: by default a choice's score is the SUM of its tokens' log-probabilities,
i.e. log P(choice | prompt), the model's actual belief in that answer string. norm="mean" (per-token
mean) removes the penalty on choices that the tokenizer splits into more tokens, but it favours
long choices whose later tokens are easy once the first is given; both are available and every
result records which one was used.
"""

import argparse
import contextlib
import functools
import hashlib
import itertools
import math
import numbers
import random
import re
import time
import traceback
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from common import SEED_RULE, check_writable, in_directory, run_subcommand, seed_ok, sha256_file, whole_number
from model import autocast, fingerprint, load_checkpoint, weights_file
from stats import MIN_CLUSTERS, NOISE, bootstrap_diff, decimals, describe_difference, describe_rise, \
    describe_vs_chance, pct, points_range, rise, signed_points, wilson
from lora import load_adapter, merge, read_adapter
from report import add_seeds_parser, bits, cell, check_report_files, probe_id, probes_sha256, write_report
from units import cluster_of, whole_words, without_article


class EvalError(ValueError):
    """Bad input to an evaluation: unknown unit, mismatched model, malformed probe."""


def _whole(least):
    """A check that a value is a whole number of at least least."""
    return lambda v: whole_number(v, least)


# the settings the scoring and sampling read, by their command-line names: whether a value is allowed, and
# what it must be (a nan fails every comparison, so a range refuses it)
SETTINGS = {
    "batch_size": (_whole(1), "a whole number of at least 1"),
    "samples": (_whole(0), "a whole number, 0 (none) or more"),
    "n": (_whole(1), "a whole number of at least 1"),
    "max_new_tokens": (_whole(1), "a whole number of at least 1"),
    "temperature": (lambda v: isinstance(v, numbers.Real) and 0 <= v < math.inf,
                    "a finite number, 0 (greedy) or more"),
    "top_k": (lambda v: v is None or _whole(0)(v), "a whole number, 0 (no cut) or more"),
    "seed": (seed_ok, SEED_RULE),
}


def check_settings(**values):
    """Refuse (EvalError naming the flag) a setting out of its range, before anything is scored or written:
    a batch size of -1 once scored no probe at all, and verify recorded that as a failed gate."""
    for name, value in values.items():
        ok, must = SETTINGS[name]
        if not ok(value):
            raise EvalError(f"--{name.replace('_', '-')} {value}: must be {must}")


def check_name(name, spec):
    """Refuse a model's name that report.md cannot show (a | ends a table cell, a line break its row),
    that cannot name a file (a /) or a control (--controls A:B splits at the :), or an empty one."""
    if not name or any(c in name for c in "|/:") or not name.isprintable():
        raise EvalError(f"model {f'{name}={spec}'!r}: a name must be non-empty, with no |, /, :, line break or "
                        "other control character (it heads rows of report.md's tables and names --controls)")


@contextlib.contextmanager
def _eval_mode(model):
    """model.eval() for the block, then back to whatever mode it was in (ladder scores mid-training)."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


# ----------------------------------------------------------------------------- probe scoring

def _encode_probe(tokenizer, probe, i, eot):
    """Prompt ids and one continuation per choice; each choice is " " + choice after the prompt."""
    for key in ("probe", "answer", "choices"):
        if key not in probe:
            raise EvalError(f"probe {i}: missing {key!r} (have {sorted(probe)})")
    if probe["answer"] not in probe["choices"]:
        raise EvalError(f"probe {i}: answer {probe['answer']!r} is not one of its choices {probe['choices']}")
    # a probe is read as the start of a document, which in training follows an <|endoftext|>;
    # prompts end right before the answer word, so a stray trailing space would double the separator
    prompt = [eot] + tokenizer.encode_ordinary(probe["probe"].rstrip(" "))
    return prompt, [tokenizer.encode_ordinary(" " + c) for c in probe["choices"]]


def _result(probe, logprobs, exact):
    scores = np.asarray(logprobs, dtype=float)
    # a diverged model's NaN scores pick nothing: argmax would pick the first choice, and a unit whose
    # answers come first would pass its gate
    pred = None if np.isnan(scores).any() or not np.isfinite(scores.max()) else \
        probe["choices"][int(np.argmax(scores))]  # exact ties: the first choice
    exact = exact and pred is not None
    return {"unit": probe.get("unit"), "type": probe.get("type", "recall"), "level": probe.get("level"),
            "probe": probe["probe"], "answer": probe["answer"], "pred": pred, "correct": pred == probe["answer"],
            "exact": exact, "n_choices": len(probe["choices"]), "logprobs": logprobs}


def answer_frequency(probes, documents):
    """The answer-frequency baseline's results: each probe answered with the choice its unit's
    documents (documents: unit -> texts) mention most often, ties broken by a hash of the prompt and
    the choice, so that no answer is favoured. A model that learned only how often its units use each
    word scores this; where a world spreads its answers evenly, it stays near chance. A choice is
    counted without its article ("a florp" as "florp"), since the text says "each florp" and "a kind
    of florp" as often as "a florp"."""
    return _most_mentioned(probes, lambda p: documents.get(p.get("unit"), ()), lambda p: p.get("unit"))


def association(probes, documents):
    """The association baseline's results: each probe answered with the choice mentioned most often in
    the documents of its unit that name what it rests on (its cluster: the entity it asks about), ties
    broken as answer_frequency's. A model that learned only which words come with which name scores
    this: a reasoning probe whose premises share documents with its entity can be answered by
    association, not composition. A probe without a cluster reads as its unit's answer frequency."""
    def texts(p):
        if not p.get("cluster"):
            return documents.get(p.get("unit"), ())
        name = re.compile(whole_words(p["cluster"]), re.IGNORECASE)
        return [t for t in documents.get(p.get("unit"), ()) if name.search(t)]
    return _most_mentioned(probes, texts, lambda p: (p.get("unit"), p.get("cluster")))


def _most_mentioned(probes, texts, key):
    """Each probe answered with its choice found most often (as a whole word, without its article) in
    texts(probe), counted once per key(probe); ties broken by a hash of the prompt and the choice."""
    counted, read = {}, {}

    def mentions(p, choice):
        k = key(p)
        if (k, choice) not in counted:
            if k not in read:
                read[k] = texts(p)
            word = re.compile(whole_words(without_article(choice)), re.IGNORECASE)
            counted[k, choice] = sum(len(word.findall(t)) for t in read[k])
        return counted[k, choice]

    out = []
    for p in probes:
        n = [mentions(p, c) for c in p["choices"]]
        tied = [c for c, k in zip(p["choices"], n) if k == max(n)]
        pick = min(tied, key=lambda c: hashlib.sha256(f"{p['probe']}\0{c}".encode()).hexdigest())
        out.append(_result(p, [float(c == pick) for c in p["choices"]], False))
    return out


def _norm(total, n, norm):
    if norm not in ("sum", "mean"):
        raise EvalError(f"norm must be 'sum' or 'mean', not {norm!r}")
    return total / n if norm == "mean" else total


def _probe_name(probe, i):
    """A probe as an error names it: its unit and its prompt (shortened), else its place in the list."""
    text = probe.get("probe")
    if not isinstance(text, str):
        return f"probe {i}"
    short = text if len(text) <= 50 else text[:47] + "..."
    return (f"unit {probe['unit']}, " if probe.get("unit") else "") + f"probe {short!r}"


def encode_probes(tokenizer, probes, block, model_name=None):
    """Each probe's (prompt ids, choice ids), refusing (EvalError naming the probe, and the model
    whose block_size it is) a probe whose prompt and longest choice do not fit the block together:
    cutting the prompt's start (often the entity's name) would score another question."""
    of = f" of model {model_name}" if model_name is not None else ""
    encoded = []
    for i, p in enumerate(probes):
        prompt, conts = _encode_probe(tokenizer, p, i, tokenizer.eot_token)
        longest, text = max(len(cont) for cont in conts), len(prompt) - 1  # the <|endoftext|> is no text
        if longest > block:
            raise EvalError(f"{_probe_name(p, i)}: a choice of {longest} tokens does not fit block_size {block}{of}")
        if text + longest > block:  # the model reads <|endoftext|>, the prompt and the choice but its last token
            raise EvalError(f"{_probe_name(p, i)}: its prompt of {text} tokens and a choice of {longest} do not fit "
                            f"block_size {block}{of} together ({text + longest} tokens)")
        encoded.append((prompt, conts))
    return encoded


@torch.no_grad()
def score_probes(model, tokenizer, probes, batch_size=64, norm="sum", device="cpu", share_prompts=True,
                 model_name=None):
    """Score multiple-choice probes: each choice's log-likelihood after the prompt, many rows per
    forward pass. With share_prompts, a probe whose choices are all single tokens is one row (the
    prompt's last position scores every choice); otherwise each (probe, choice) is a row. One dict
    per probe (see _result). A probe that does not fit the block is refused before any is scored
    (encode_probes; model_name names the model there)."""
    _norm(0.0, 1, norm)  # a bad norm fails before any work
    check_settings(batch_size=batch_size)
    slots = []  # (probe index, number of continuation tokens): one per (probe, choice)
    rows = []  # (input ids, [(position, target token, slot)]): what each row reads from its logits
    for i, (prompt, conts) in enumerate(encode_probes(tokenizer, probes, model.config.block_size, model_name)):
        longest = max(len(cont) for cont in conts)
        first = len(slots)
        slots += [(i, len(cont)) for cont in conts]
        if share_prompts and longest == 1:
            rows.append((prompt, [(len(prompt) - 1, cont[0], first + c) for c, cont in enumerate(conts)]))
            continue
        for c, cont in enumerate(conts):
            ids = prompt + cont
            n = len(ids) - 1  # the input is ids[:-1]; position t predicts ids[t + 1]
            rows.append((ids[:-1], [(t, ids[t + 1], first + c) for t in range(n - len(cont), n)]))
    totals, misses = np.zeros(len(slots)), np.zeros(len(slots))
    # rows of similar length share a batch, so little compute goes to padding
    order = sorted(range(len(rows)), key=lambda r: len(rows[r][0]))
    with _eval_mode(model):
        for s in range(0, len(order), batch_size):
            chunk = order[s:s + batch_size]
            x = np.zeros((len(chunk), max(len(rows[r][0]) for r in chunk)), dtype=np.int64)
            reads = []  # (batch row, position, target token, slot)
            for b, r in enumerate(chunk):
                ids, row_reads = rows[r]
                x[b, :len(ids)] = ids  # right padding: causal attention never looks ahead
                reads += [(b, t, token, slot) for t, token, slot in row_reads]
            b_idx, t_idx, target, slot = (torch.tensor(v, device=device) for v in zip(*reads))
            with autocast(device):
                h = model.hidden(torch.from_numpy(x).to(device))[b_idx, t_idx]
            # the output head only where a choice token is read, (N, vocab), and in float32: bf16 logits
            # tie two choices' scores often enough that the order they are listed in would pick the winner
            picked = model.lm_head(h.float())
            logp = picked.log_softmax(-1).gather(1, target[:, None]).squeeze(1)
            # greedy decoding reproduces the answer iff every answer token is the argmax given the
            # tokens before it, so exact match falls out of the same teacher-forced pass
            miss = (picked.argmax(-1) != target).float()
            np.add.at(totals, slot.cpu().numpy(), logp.cpu().numpy())
            np.add.at(misses, slot.cpu().numpy(), miss.cpu().numpy())
    results, k = [], 0
    for p in probes:
        n = len(p["choices"])
        exact = misses[k + p["choices"].index(p["answer"])] == 0
        results.append(_result(p, [_norm(float(totals[k + c]), slots[k + c][1], norm) for c in range(n)], bool(exact)))
        k += n
    return results


# ----------------------------------------------------------------------------- statistics

def _stats(group):
    n, k = len(group), sum(r["correct"] for r in group)
    lo, hi = wilson(k, n)
    return {"n": n, "correct": k, "acc": k / n if n else 0.0, "lo": lo, "hi": hi,
            "chance": float(np.mean([1 / r["n_choices"] for r in group])) if n else 0.0,
            "exact": sum(r["exact"] for r in group) / n if n else 0.0}


def summarize(results, levels=None):
    """Accuracy overall, by unit, by level and by probe type: {n, correct, acc, lo, hi, chance,
    exact}. A unit's level comes from `levels` (unit -> level) or from each result."""
    levels = levels or {}
    def grouped(key):
        groups = {}
        for r in results:
            groups.setdefault(key(r), []).append(r)
        return {str(g): _stats(rs) for g, rs in sorted(groups.items(), key=lambda kv: str(kv[0]))}
    return {"overall": _stats(results),
            "by_unit": grouped(lambda r: r["unit"]),
            "by_level": grouped(lambda r: levels.get(r["unit"], r.get("level"))),
            "by_type": grouped(lambda r: r["type"])}


def composition(probes, results, compared=None):
    """Composition given its premises, by probe type: over the `compared` probes (default: all) of
    non-recall types that list "premises", accuracy on all of them beside accuracy on those whose
    premise probes (matched by prompt among all `probes`) the same results answer correctly."""
    counted = {id(p) for p in (probes if compared is None else compared)}
    known = {}  # prompt -> answered correctly (every probe with that prompt, should there be several)
    for p, r in zip(probes, results):
        known[p["probe"]] = known.get(p["probe"], True) and bool(r["correct"])
    groups = {}
    for p, r in zip(probes, results):
        if r["type"] != "recall" and p.get("premises") and id(p) in counted:
            groups.setdefault(r["type"], []).append((r, [known.get(q) for q in p["premises"]]))
    # a premise missing from the probes can be neither right nor wrong: its probe is not in "given"
    return {t: {"all": _stats([r for r, _ in rows]),
                "given_premises": _stats([r for r, premises in rows if all(premises)]),
                "premises_missing": sum(None in premises for _, premises in rows)}
            for t, rows in sorted(groups.items())}


# ----------------------------------------------------------------------------- perplexity

def bits_per_byte(loss_sum_nats, n_bytes):
    """Loss in nats of the text tokens (special tokens left out, as they predict no byte) over the
    UTF-8 bytes they predict, in bits: comparable across tokenizers."""
    return loss_sum_nats / (math.log(2) * n_bytes) if n_bytes else float("nan")


@functools.lru_cache(maxsize=4)
def token_bytes(tokenizer):
    """UTF-8 length of every token (special tokens count 0 bytes: they are not text)."""
    special = set(tokenizer.special_tokens_set)
    out = np.zeros(tokenizer.n_vocab, dtype=np.int64)
    for i in range(tokenizer.n_vocab):
        try:
            b = tokenizer.decode_single_token_bytes(i)
        except KeyError:  # a gap in the ranks
            continue
        out[i] = 0 if b.decode("utf-8", "replace") in special else len(b)
    return out


@torch.no_grad()
def perplexity(model, tokens, block_size=None, batch_size=16, device="cpu", tokenizer=None, max_tokens=None):
    """Loss, perplexity (and bits per byte given a tokenizer) over non-overlapping windows of a 1-D
    token array, or of a list of texts (each preceded by <|endoftext|>; needs the tokenizer)."""
    if isinstance(tokens, (list, tuple)) and tokens and isinstance(tokens[0], str):
        if tokenizer is None:
            raise EvalError("perplexity of texts needs their tokenizer")
        tokens = [t for doc in tokens for t in [tokenizer.eot_token] + tokenizer.encode_ordinary(doc)]
    tokens = tokens if isinstance(tokens, np.ndarray) else np.asarray(tokens, dtype=np.int64)
    if max_tokens:
        tokens = tokens[:max_tokens + 1]
    if len(tokens) < 2:
        raise EvalError(f"perplexity needs at least 2 tokens, got {len(tokens)}")
    T = block_size or model.config.block_size
    nbytes_of = token_bytes(tokenizer) if tokenizer is not None else None
    starts = list(range(0, len(tokens) - 1, T))
    loss_sum, text_loss, n_bytes = 0.0, 0.0, 0
    with _eval_mode(model):
        for s in range(0, len(starts), batch_size):
            chunk = starts[s:s + batch_size]
            x = torch.zeros(len(chunk), T, dtype=torch.long)
            y = torch.full((len(chunk), T), -1, dtype=torch.long)
            for b, i in enumerate(chunk):
                w = torch.from_numpy(np.asarray(tokens[i:i + T + 1], dtype=np.int64))  # memmap: read a window
                x[b, :len(w) - 1], y[b, :len(w) - 1] = w[:-1], w[1:]
            with autocast(device):
                h = model.hidden(x.to(device))
            logits = model.lm_head(h.float())  # float32, as score_probes reads the head
            losses = F.cross_entropy(logits.flatten(0, 1), y.to(device).flatten(), ignore_index=-1,
                                     reduction="none").cpu()
            loss_sum += losses.sum().item()
            if nbytes_of is not None:  # bits per byte: the loss of the tokens that are text (nanochat's)
                nb = torch.from_numpy(nbytes_of)[y.flatten().clamp(min=0)] * (y.flatten() >= 0)
                text_loss += losses[nb > 0].sum().item()
                n_bytes += int(nb.sum())
    n = len(tokens) - 1
    out = {"loss": loss_sum / n, "ppl": math.exp(min(loss_sum / n, 700)), "tokens": n, "loss_sum": loss_sum}
    if nbytes_of is not None:
        out.update(bytes=n_bytes, text_loss_sum=text_loss, bpb=bits_per_byte(text_loss, n_bytes))
    return out


def corpus_perplexity(model, corpus, units, split="val", device="cpu", max_tokens=1 << 16):
    """Pooled perplexity and bits per byte over some units' held-out tokens; None if they have none."""
    loss_sum = text_loss = n = n_bytes = 0
    for u in units:
        toks = corpus.tokens(u, split)
        if len(toks) < 2:
            continue
        r = perplexity(model, toks, device=device, tokenizer=corpus.tokenizer, max_tokens=max_tokens)
        loss_sum, n, n_bytes = loss_sum + r["loss_sum"], n + r["tokens"], n_bytes + r["bytes"]
        text_loss += r["text_loss_sum"]
    if not n:
        return None
    return {"loss": loss_sum / n, "ppl": math.exp(min(loss_sum / n, 700)), "tokens": n,
            "bpb": bits_per_byte(text_loss, n_bytes)}


# ----------------------------------------------------------------------------- models and corpora

def open_corpus(corpus_dir):
    """Open a corpus and check it (passport chain, unit and shard hashes); failing check is an error."""
    from curriculum import Corpus  # imported here: scoring and perplexity need no corpus
    corpus = Corpus(corpus_dir)
    corpus.check()
    return corpus


def _split_spec(spec):
    spec = str(spec)
    if "+" in spec and not Path(spec).exists():
        ckpt, adapter = spec.rsplit("+", 1)
        return ckpt, adapter
    return spec, None


def from_init(record, key):
    """A checkpoint's `tokens` or `flops` counted from random init: record's "<key>_total", else its
    "<key>" (older checkpoints count one run only), else None."""
    for k in (f"{key}_total", key):
        if record.get(k) is not None:
            return record[k]
    return None


def load_model(spec, device="cpu", tokenizer_hash=None):
    """Load "CHECKPOINT" or "CHECKPOINT+ADAPTER" -> (model in eval mode, info). Refuses a checkpoint
    or adapter made with another tokenizer, and an adapter trained on another base."""
    ckpt, adapter = _split_spec(spec)
    model, meta = load_checkpoint(ckpt, device=device)
    found = meta.get("tokenizer_hash")
    if tokenizer_hash and found and found != tokenizer_hash:
        raise EvalError(f"{ckpt}: checkpoint was trained with tokenizer {found[:12]}, the corpus has "
                        f"{tokenizer_hash[:12]}; evaluate it on the corpus it was trained on")
    info = {"spec": str(spec), "checkpoint": ckpt, "adapter": adapter, "meta": meta,
            "base_fingerprint": fingerprint(model), "adapter_fingerprint": None, "adapter_header": None,
            "mode": meta.get("mode"), "tokens": from_init(meta, "tokens"), "flops": from_init(meta, "flops"),
            "seconds": meta.get("seconds"), "trainable_params": meta.get("trainable_params")}
    if adapter:
        header = load_adapter(model, adapter, tokenizer_hash or found)
        info.update(adapter=header["file"], adapter_header=header, adapter_fingerprint=sha256_file(header["file"]),
                    mode="lora", tokens=from_init(header, "tokens"), flops=from_init(header, "flops"),
                    seconds=header.get("seconds"),
                    trainable_params=header.get("trainable_params",
                                                sum(p.numel() for p in model.parameters() if p.requires_grad)))
        merge(model)  # scored as the merged checkpoint it becomes (under bf16 the two forwards round apart)
    model.eval()
    return model, info


def _check_vocab(model, tokenizer, spec):
    if model.config.vocab_size < tokenizer.n_vocab:
        raise EvalError(f"{spec}: model vocab {model.config.vocab_size} is smaller than the tokenizer's "
                        f"{tokenizer.n_vocab}; it was not trained on this corpus")


def _passport_record(corpus, info):
    """Refuse a checkpoint or adapter that differs from the sha256 the passport recorded for it
    (check_recorded); fill tokens / flops (from random init) / seconds / trainable params from the
    passport's model_trained or adapter_trained event that names it (by path or file sha256), when
    meta lacks them."""
    check_recorded(corpus, weights_file(info["checkpoint"], "model.safetensors"), "model_trained")
    if info["adapter"]:
        check_recorded(corpus, info["adapter"], "adapter_trained")
    ckpt = Path(info["checkpoint"])
    path = info["adapter"] or str(ckpt / "model.safetensors" if ckpt.is_dir() else ckpt)
    key = "adapter" if info["adapter"] else "checkpoint"
    names, sha = {str(path), str(Path(path).parent), info["spec"]}, sha256_file(path)
    for ev in reversed(corpus.passport.events("adapter_trained" if info["adapter"] else "model_trained")):
        # its own file or run directory: a later model's event names this one too, as its init
        if ev.get(f"{key}_sha256") == sha or {str(ev.get(key)), str(ev.get("out_dir"))} & names:
            for key in ("tokens", "flops"):
                if info.get(key) is None:
                    info[key] = from_init(ev, key)
            for key in ("seconds", "trainable_params"):
                if info.get(key) is None and ev.get(key) is not None:
                    info[key] = ev[key]
            break
    return info


# ----------------------------------------------------------------------------- the verification gate

def gate(after, retention, threshold=0.5, tolerance=0.1, clear_of_chance=True, gain=None, min_gain=0.0):
    """The reasons a unit fails verification (empty: it passes): accuracy after must be clear of
    chance (after's interval; with its "clusters", from at least stats.MIN_CLUSTERS of them) and at
    least `threshold`, must have risen by at least `min_gain` over the model without the adapter
    (gain: its rise and interval), and no earlier unit may lose more than `tolerance`."""
    reasons = []
    if clear_of_chance and after.get("clusters", MIN_CLUSTERS) < MIN_CLUSTERS:
        reasons.append(f"accuracy {pct(after['acc'])} rests on {after['clusters']} entities or facts, too few to "
                       f"tell from chance {pct(after['chance'])} (at least {MIN_CLUSTERS})")
    elif clear_of_chance and not after["lo"] > after["chance"]:
        reasons.append(f"accuracy {pct(after['acc'])} is not clear of chance {pct(after['chance'])} "
                       f"(95% CI lower bound {pct(after['lo'], after['chance'])})")
    if after["acc"] < threshold:  # a decimal where whole percents would read "50% is below 50%"
        reasons.append(f"accuracy {pct(after['acc'], threshold)} is below the threshold {pct(threshold)}")
    if gain is not None and gain["diff"] < min_gain - NOISE:
        # a model that knew the unit before passes the other rules with an adapter that taught nothing
        # in points, with the decimals that keep a change just short of the least gain from reading as it
        changed = f"{100 * gain['diff']:+.{decimals(gain['diff'], min_gain)}f}"
        reasons.append(f"accuracy changed by {changed} points over the model without the adapter (95% CI "
                       f"{points_range(gain['lo'], gain['hi'])} points), less than the least gain, {100 * min_gain:g} "
                       "points")
    for u, r in retention.items():
        drop = r["before"]["acc"] - r["after"]["acc"]
        if drop > tolerance + NOISE:
            reasons.append(f"retention of {u} fell {pct(drop, tolerance)} ({pct(r['before']['acc'])} -> "
                           f"{pct(r['after']['acc'])}{_fall_interval(r)}), more than the tolerance {pct(tolerance)}")
    return reasons


def _fall_interval(r):
    """"; the fall's 95% CI a-b" where a retention entry has one (older passports' have none)."""
    f = r.get("fall")
    return f"; the fall's 95% CI {pct(f['lo'])} to {pct(f['hi'])}" if f else ""


RETENTION_MIN_UNIT = 30  # a unit is gated on its own only with this many probes in the sample


def retention_sample(corpus, units, n=None):
    """Probes of earlier units for the retention check: those their own gate read (a decision reads
    only the gate's half of a unit's probes; curriculum.gate_read), all of them, or at most n, taken
    in turn from each unit's in a fixed shuffled order (so a unit's sample only shrinks as units
    accumulate, and checking an adapter costs the same however many came before)."""
    read = corpus.gate_reads(units)
    pools = [random.Random(u).sample(ps, len(ps)) for u in units for ps in [read.get(u, [])]]
    if n is None or sum(map(len, pools)) <= n:
        return [p for pool in pools for p in pool]
    out, i = [], 0
    while len(out) < n:
        out += [pool[i] for pool in pools if i < len(pool)][:n - len(out)]
        i += 1
    return out


def _retention_groups(sample):
    """The retention check's groups: every sampled probe together, and each unit with enough of them."""
    by_unit = {}
    for p in sample:
        by_unit.setdefault(p["unit"], []).append(p)
    groups = {f"the earlier units ({len(sample)} probes)": sample} if sample else {}
    groups.update({u: ps for u, ps in by_unit.items() if len(ps) >= RETENTION_MIN_UNIT})
    return groups


def _retention_entry(probes, before, after):
    """One retention group's accuracy before and after the adapter, and its fall (before - after) with
    a 95% paired bootstrap interval over clusters: how far a few dozen probes pin the fall down."""
    fall = bootstrap_diff([r["correct"] for r in before], [r["correct"] for r in after], bootstrap_keys(probes))
    return {"before": summarize(before)["overall"], "after": summarize(after)["overall"],
            "fall": dict(zip(("diff", "lo", "hi"), fall))}


def check_recorded(corpus, file, event):
    """Refuse a checkpoint or adapter file whose sha256 differs from every one the passport's
    model_trained / adapter_trained events recorded for its path; the latest event that matches it, or
    None if none names its path. A relative path names files of the same name in every directory
    trainings ran from (a0/ here and in exp2/): one that recorded another file is no sign of a change."""
    key = "adapter" if event == "adapter_trained" else "checkpoint"
    target, sha, named = Path(file).resolve(), None, 0
    for e in reversed(corpus.passport.events(event)):
        if e.get(key) and _same_file(Path(e[key]), target):
            named += 1
            if e.get(f"{key}_sha256") is None:
                return e
            sha = sha or sha256_file(file)
            if e[f"{key}_sha256"] == sha:
                return e
    if named:
        raise EvalError(f"{file}: sha256 differs from the passport's {event} event{'s' if named > 1 else ''} for "
                        "its path: the file changed after it was written, so it is not the model the passport describes")
    return None


def _same_file(recorded, target):
    """Whether a path the passport recorded names target (a resolved path): a relative one was
    recorded from the directory the training ran in, which need not be this process's, so it names
    target when it ends target's path."""
    if recorded.is_absolute():
        return recorded.resolve() == target
    parts = recorded.parts
    return recorded.resolve() == target or (".." not in parts and target.parts[-len(parts):] == parts)


def verify(corpus_dir, unit, model_path, adapter_path, threshold=0.5, retention_tolerance=0.1, device="cpu",
           clear_of_chance=True, batch_size=64, norm="sum", gate_on="recall", retention_probes=None, min_gain=0.1):
    """Score unit's probes before and after the adapter, earlier verified units (retention) and
    primitive perplexity (forgetting); append a unit_verified event to the passport.

    The accuracy gate looks at half of the unit's probes of type `gate_on` (what an adapter is taught:
    stated facts), or of all of them when the unit has none of that type (or gate_on is "all" or
    None): the rule of curriculum.gated_probes; the reports read the other half. Its accuracy's 95%
    interval is a bootstrap over the entities and facts those probes rest on (bootstrap_keys), as the
    comparisons' are. Every probe is still scored and recorded. Retention is read on at most
    retention_probes of the probes the gates of the verified units before it in curriculum order
    read (retention_sample): all of them together may lose at most retention_tolerance, and so may
    each unit with enough probes in the sample. The gated accuracy must also rise by min_gain over
    the model without the adapter: a unit the model already knew is not taught by it. The gain and
    each fall are recorded with their 95% intervals (paired bootstraps over clusters); the rules read
    the gain and the falls themselves."""
    from curriculum import gated_probes  # imported here, as in open_corpus
    for flag, value in (("--threshold", threshold), ("--retention-tolerance", retention_tolerance),
                        ("--min-gain", min_gain)):
        if not 0 <= value <= 1:
            raise EvalError(f"{flag} {value}: a share of the probes, from 0 to 1")
    check_settings(batch_size=batch_size)
    corpus = open_corpus(corpus_dir)
    if unit not in corpus.units:
        raise EvalError(f"{corpus_dir}: unknown unit {unit!r}; the corpus has {', '.join(corpus.units) or 'none'}")
    probes = corpus.probes(unit)
    if not probes:
        raise EvalError(f"unit {unit!r} has no probes (primitive units are not verified)")
    model, info = load_model(model_path, device, corpus.tokenizer_hash)
    if info["adapter"]:
        raise EvalError(f"--model {model_path}: give the base checkpoint alone and the adapter with --adapter")
    _check_vocab(model, corpus.tokenizer, model_path)
    # refuse a wrong or changed adapter before spending time on scoring (load_adapter checks again)
    header = read_adapter(adapter_path)[1]
    check_recorded(corpus, weights_file(model_path, "model.safetensors"), "model_trained")
    check_recorded(corpus, header["file"], "adapter_trained")
    _check_adapter(header, info, corpus, unit, model_path)
    gate_read, gated_type = gated_probes(probes, gate_on)
    read = {id(p) for p in gate_read}  # gate_read keeps the order of probes
    order = corpus.order()
    # the units the model was grown on before this one: a later unit, verified since, was never in it
    earlier = [u for u in corpus.verified() if order.index(u) < order.index(unit)]
    groups = _retention_groups(retention_sample(corpus, earlier, retention_probes))
    primitive = corpus.primitive_units()
    # every probe measure() reads fits the block, before any is scored or recorded
    encode_probes(corpus.tokenizer, probes + [p for ps in groups.values() for p in ps], model.config.block_size,
                  model_path)

    def measure():
        score = lambda ps: score_probes(model, corpus.tokenizer, ps, batch_size, norm, device, model_name=model_path)
        results = score(probes)
        gated = [r for p, r in zip(probes, results) if id(p) in read]  # in gate_read's order
        retained = {g: score(ps) for g, ps in groups.items()}
        ppl = corpus_perplexity(model, corpus, primitive, device=device)
        return summarize(results)["overall"], gated, retained, ppl

    before, gated_before, ret_before, ppl_before = measure()
    # the gate reads the model the ladder carries on: the merged one (under bf16 autocast, an adapter's own
    # path and its merged weight round apart)
    load_adapter(model, adapter_path, corpus.tokenizer_hash)
    merge(model)
    after, gated_after, ret_after, ppl_after = measure()
    retention = {g: _retention_entry(ps, ret_before[g], ret_after[g]) for g, ps in groups.items()}
    keys = bootstrap_keys(gate_read)
    after_correct = [r["correct"] for r in gated_after]
    gain = dict(zip(("diff", "lo", "hi"), bootstrap_diff(after_correct, [r["correct"] for r in gated_before], keys)))
    # the accuracy's interval over the entities and facts the probes rest on, as the comparisons' (Wilson's
    # takes a creature's two or three facts for independent probes)
    _, lo, hi = bootstrap_diff(after_correct, [0] * len(after_correct), keys)
    gated_before = summarize(gated_before)["overall"]
    gated_after = dict(summarize(gated_after)["overall"], lo=lo, hi=hi, clusters=len(_labels(keys)))
    reasons = gate(gated_after, retention, threshold, retention_tolerance, clear_of_chance, gain, min_gain)
    result = {"unit": unit, "passed": not reasons, "before": before, "after": after, "retention": retention,
              "gated": {"types": "all" if gated_type == "all" else [gated_type], "probes_sha256":
                        probes_sha256(gate_read), "before": gated_before, "after": gated_after, "gain": gain},
              "primitive_ppl": {"before": ppl_before, "after": ppl_after}, "reasons": reasons,
              "thresholds": {"accuracy": threshold, "retention_tolerance": retention_tolerance, "min_gain": min_gain,
                             "clear_of_chance": clear_of_chance, "norm": norm, "retention_probes": retention_probes},
              "adapter_fingerprint": sha256_file(header["file"]), "base_fingerprint": info["base_fingerprint"],
              "adapter": header["file"], "model": str(model_path)}
    corpus.passport.append("unit_verified", **result)
    return result


def _check_adapter(header, info, corpus, unit, model_path):
    """Refuse an adapter trained on another base or tokenizer, or on other units."""
    if header["base_fingerprint"] != info["base_fingerprint"]:
        raise EvalError(f"{header['file']}: adapter was trained on base {header['base_fingerprint'][:12]}, "
                        f"not on {model_path} ({info['base_fingerprint'][:12]}); verify it with its own base")
    if header.get("tokenizer_hash") and header["tokenizer_hash"] != corpus.tokenizer_hash:
        raise EvalError(f"{header['file']}: adapter was trained with tokenizer {header['tokenizer_hash'][:12]}, "
                        f"the corpus has {corpus.tokenizer_hash[:12]}")
    if header.get("units") and unit not in header["units"]:
        raise EvalError(f"{header['file']}: adapter was trained on units {header['units']}, not {unit!r}")


# ----------------------------------------------------------------------------- looking at a model

@torch.no_grad()
def sample(model, tokenizer, prompt, n=1, max_new_tokens=64, temperature=0.8, top_k=40, seed=0, device="cpu"):
    """n generations after `prompt` (stopped at <|endoftext|>), reproducible from `seed`."""
    check_settings(n=n, max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k, seed=seed)
    ids = ([tokenizer.eot_token] + tokenizer.encode_ordinary(prompt))[-model.config.block_size:]
    gen = torch.Generator(device=device).manual_seed(seed)
    with _eval_mode(model), autocast(device):
        out = model.generate(torch.tensor([ids] * n, device=device), max_new_tokens, temperature, top_k, gen)
    texts = []
    for row in out[:, len(ids):].tolist():
        row = row[:row.index(tokenizer.eot_token)] if tokenizer.eot_token in row else row
        texts.append(tokenizer.decode([t for t in row if t < tokenizer.n_vocab]))
    return texts


# ----------------------------------------------------------------------------- the comparison

def compare(corpus_dir, specs, out_dir, retention_steps=None, controls=None, samples=0, device="cpu",
            batch_size=64, norm="sum", seed=0, curves=None, curve_references=None, notes=None):
    """Score every model (name -> "CKPT[+ADAPTER]") on all probes of the corpus and write
    report.md, report.json (this dict) and report.png (when matplotlib is installed) to out_dir.
    Every table, control and sentence reads only the probes of units the gate did not reject; the
    rejected units' probes are scored too and reported apart. With learning curves (learning_curves's
    result), their points, curves.png and sentences against the curve_references models go in too.
    notes: sentences the report states before its tables (what its caller left out, and why)."""
    check_settings(batch_size=batch_size, samples=samples, seed=seed)
    for name, spec in specs.items():
        check_name(name, spec)
    _check_controls(controls)
    check_writable(out_dir)  # before minutes of scoring, not at the end
    check_report_files(out_dir)
    if in_directory(Path(out_dir) / "report.md", corpus_dir):  # the corpus is data, copied and hashed whole
        raise EvalError(f"--out {out_dir}: is inside the corpus directory {corpus_dir}, which holds the corpus and "
                        "nothing else; write the report to another directory")
    corpus = open_corpus(corpus_dir)
    named = [("--retention", n) for n in retention_steps or []]
    named += [("--controls", n) for pair in controls or [] for n in pair]
    named += [("curve references", n) for n in curve_references or []]
    for flag, name in named:
        if name not in specs:
            raise EvalError(f"{flag}: {name!r} is not one of the models given ({', '.join(specs)})")
    steps = list(retention_steps or [])
    twice = next((n for k, n in enumerate(steps) if n in steps[:k]), None)
    if twice is not None:  # its row twice in the retention matrix, as though the accumulation held it twice
        raise EvalError(f"--retention: {twice!r} is named twice; give each step of the accumulation once")
    units, probes, compared, read, apart = comparison_probes(corpus)
    rejected, verdicts = corpus.rejected(), corpus.latest_verdicts()
    parts = {"summary": compared, "rejected_summary": apart, "gate_summary": read}
    levels = {u: corpus.units[u].get("level") for u in units}
    loaded = {name: load_model(spec, device, corpus.tokenizer_hash) for name, spec in specs.items()}  # fail early
    for name, (model, _) in loaded.items():  # every probe fits every model's block, before any model is scored
        encode_probes(corpus.tokenizer, probes, model.config.block_size, specs[name])
    models, correct = {}, {}
    for name, (model, info) in loaded.items():
        _check_vocab(model, corpus.tokenizer, specs[name])
        models[name], correct[name] = _measure_model(corpus, model, _passport_record(corpus, info), probes, parts,
                                                     levels, samples, device, batch_size, norm, seed)
    shown = {p["unit"] for p in compared}  # units with compared probes: not rejected, not all read by the gate
    documents = {u: corpus.documents(u, "train") for u in units}
    prior, near = answer_frequency(compared, documents), association(compared, documents)
    report = {"corpus": str(corpus_dir), "passport_head": corpus.passport.head(), "norm": norm,
              "notes": list(notes or []), "units": units,
              "levels": levels, "models": models,
              "probes_sha256": {"all": probes_sha256(probes), "compared": probes_sha256(compared),
                                "gate_read": probes_sha256(read)},
              "chance": [],
              "answer_frequency": summarize(prior, levels), "association": summarize(near, levels),
              "retention": _retention(models, retention_steps, [u for u in units if u in shown]),
              "comparisons": [], "rejected": rejected,
              # why, as the gate said it (a retention fall, a miss of the threshold): a report names the reasons
              "rejected_reasons": {u: verdicts[u].get("reasons", []) for u in rejected}}
    # controls are compared overall, by level and by type; without controls, every pair overall
    keys = bootstrap_keys(compared, probes)
    # per probe, so that seeds whose gates kept other units are compared on the probes they share
    report["compared"] = {"ids": [probe_id(p) for p in compared], "types": [p.get("type", "recall") for p in compared],
                          "levels": [levels[p["unit"]] for p in compared], "units": [p["unit"] for p in compared],
                          "keys": [list(k) for k in keys]}
    for name in models:
        models[name]["correct"] = bits(correct[name])
    report["answer_frequency"]["correct"] = bits([r["correct"] for r in prior])
    report["association"]["correct"] = bits([r["correct"] for r in near])
    chance = [1 / len(p["choices"]) for p in compared]  # against chance as against a model: probes move with their clusters
    report["chance"] = [describe_vs_chance(n, m["summary"]["overall"],
                                           bootstrap_diff(correct[n], chance, keys, seed=seed), len(_labels(keys)))
                        for n, m in models.items()]
    pairs = [(tuple(p), True) for p in controls] if controls else \
        [(p, False) for p in itertools.combinations(specs, 2)]
    for (a, b), detailed in pairs:
        report["comparisons"] += _compare_pair(models, correct, compared, keys, levels, a, b, detailed, seed)
    if curves:
        report["curves"] = _curves_section(curves, compared, keys, correct, models, curve_references, seed)
    write_report(report, out_dir)
    return report


def _check_controls(controls):
    """Refuse a control pair given twice (either way round: every comparison and row of report.md
    twice) and a model paired with itself (a difference of +0 points, always)."""
    seen = {}
    for a, b in controls or []:
        if a == b:
            raise EvalError(f"--controls {a}:{b}: pairs {a!r} with itself; a control compares two models")
        if frozenset((a, b)) in seen:
            raise EvalError(f"--controls {a}:{b}: the pair {seen[frozenset((a, b))]} is given already")
        seen[frozenset((a, b))] = f"{a}:{b}"
    return controls


def comparison_probes(corpus):
    """(units with probes, all their probes, the probes compared, the probes the gate read, the probes
    set apart): a comparison leaves out the half of a verified unit's probes that its gate read
    (curriculum.gate_read), on which it was selected, and sets apart the probes of units whose latest
    verdict is a rejection, with every probe that rests on one of theirs (a premise): no model after
    the gate was taught those facts, so what follows from them tests nothing the ladder grew."""
    from curriculum import gate_read  # imported here, as in open_corpus
    by_unit = {u: ps for u in corpus.order() for ps in [corpus.probes(u)] if ps}  # each unit file read once
    if not by_unit:
        raise EvalError(f"{corpus.dir}: no unit has probes; nothing to compare")
    rejected = set(corpus.rejected())
    # a fact a verified unit also states (a rulebook every rules unit repeats) was taught all the same
    untaught = {p["probe"] for u in rejected for p in by_unit.get(u, [])} - \
        {p["probe"] for u, ps in by_unit.items() if u not in rejected for p in ps}
    latest = corpus.latest_verdicts()
    probes, compared, read, apart = [], [], [], []
    for u, ps in by_unit.items():
        gate = gate_read(latest[u], ps, corpus.dir) if u in latest and u not in rejected else []
        skip = {id(p) for p in gate}
        probes += ps
        read += gate
        for p in ps:
            if u in rejected or untaught.intersection(p.get("premises") or ()):
                apart.append(p)
            elif id(p) not in skip:
                compared.append(p)
    return list(by_unit), probes, compared, read, apart


def _measure_model(corpus, model, info, probes, parts, levels, samples, device, batch_size, norm, seed):
    """One model's entry of the report (summaries, perplexities, samples) and its correctness on the
    compared probes. parts: summary key -> the probes it reads (sublists of probes): "summary" the
    compared ones, "rejected_summary" the rejected units', "gate_summary" those the gates read."""
    t0 = time.time()
    results = score_probes(model, corpus.tokenizer, probes, batch_size, norm, device, model_name=info["spec"])
    scored = {}
    for key, ps in parts.items():
        ids = {id(p) for p in ps}
        scored[key] = [r for p, r in zip(probes, results) if id(p) in ids]
    units = list(levels)  # every unit with probes, in curriculum order
    prompts = [corpus.probes(u)[0]["probe"] for u in units[:3]]
    entry = {
        "spec": info["spec"], "mode": info["mode"], "tokens": info["tokens"], "flops": info["flops"],
        "seconds": info["seconds"], "trainable_params": info["trainable_params"],
        "base_fingerprint": info["base_fingerprint"],
        "adapter_fingerprint": info["adapter_fingerprint"], "trained_units": info["meta"].get("units"),
        "summary": summarize(scored["summary"], levels),
        "rejected_summary": summarize(scored["rejected_summary"], levels) if scored["rejected_summary"] else None,
        "gate_summary": summarize(scored["gate_summary"], levels) if scored["gate_summary"] else None,
        "composition": composition(probes, results, parts["summary"]),
        "scoring_seconds": time.time() - t0,
        "primitive_ppl": corpus_perplexity(model, corpus, corpus.primitive_units(), device=device),
        "unit_ppl": {u: corpus_perplexity(model, corpus, [u], device=device) for u in units},
        "samples": {p: sample(model, corpus.tokenizer, p, samples, 32, seed=seed, device=device)
                    for p in prompts} if samples else {}}
    return entry, [r["correct"] for r in scored["summary"]]


def bootstrap_keys(probes, every=()):
    """What each probe rests on, for the bootstrap (stats.bootstrap_diff): its "cluster" (the fact or
    entity; else its own prompt) and that of each of its premises (the probe with that prompt, found
    among probes and every; else the premise itself). Probes that share an entity or a premise, such as
    one rule applied to many creatures or one kind's property its members inherit, rise and fall together."""
    of = {p["probe"]: cluster_of(p) for ps in (every, probes) for p in ps}
    return [tuple(dict.fromkeys([cluster_of(p), *(of.get(q, q) for q in p.get("premises") or [])])) for p in probes]


def _labels(keys):
    return {k for ks in keys for k in ks}


def _retention(models, steps, units):
    """The retention matrix: each accumulation step's accuracy on every unit with compared probes (a
    rejected unit has none, nor one whose every probe its gate read); None without steps."""
    if not steps:
        return None
    return {"steps": list(steps), "units": units,
            "acc": [[models[s]["summary"]["by_unit"][u]["acc"] for u in units] for s in steps]}


def _compare_pair(models, correct, probes, keys, levels, a, b, detailed, seed):
    """Model a against model b on the same probes (keys: their bootstrap_keys): overall and, for a
    control, by level and by type."""
    scopes = [("overall", None, None)]
    if detailed:
        scopes += [(f"level {lv}", "by_level", lv) for lv in models[a]["summary"]["by_level"]]
        scopes += [(f"type {t}", "by_type", t) for t in models[a]["summary"]["by_type"]]
    out = []
    for label, key, group in scopes:
        sel = [True] * len(probes) if key is None else \
            [str(levels[p["unit"]] if key == "by_level" else p.get("type", "recall")) == group for p in probes]
        ca = [c for c, s in zip(correct[a], sel) if s]
        cb = [c for c, s in zip(correct[b], sel) if s]
        cl = [c for c, s in zip(keys, sel) if s]
        if not cl:  # every probe left out (every unit rejected): nothing to compare, not a difference of 0
            continue
        d = bootstrap_diff(ca, cb, cl, seed=seed)
        sa = models[a]["summary"]["overall"] if key is None else models[a]["summary"][key][group]
        sb = models[b]["summary"]["overall"] if key is None else models[b]["summary"][key][group]
        out.append({"a": a, "b": b, "scope": label, "control": detailed, "n": len(cl), "clusters": len(_labels(cl)),
                    "diff": d[0], "lo": d[1], "hi": d[2],
                    "sentence": f"{label}: " + describe_difference(a, sa, b, sb, d, len(_labels(cl)))})
    return out


# ----------------------------------------------------------------------------- learning curves

CURVE_POINT = ("name", "step", "tokens", "flops", "spec")  # a checkpoint of a run, as learning_curves takes it


def learning_curves(corpus_dir, points, device="cpu", batch_size=64, norm="sum"):
    """Score checkpoints of one or more runs on the comparison probes (those compare() reads). Each
    point is a dict or tuple of CURVE_POINT, name being its run's; a missing step, tokens or flops is
    read from the checkpoint. -> {"runs": {name: [points in step order, each with its accuracy
    overall and by type and its per-probe correctness]}, "probes_sha256": the probes scored, ...}"""
    check_settings(batch_size=batch_size)
    points = [dict(zip(CURVE_POINT, p)) if isinstance(p, (list, tuple)) else dict(p) for p in points]
    for point in points:
        check_name(point["name"], point["spec"])
    corpus = open_corpus(corpus_dir)
    probes = comparison_probes(corpus)[2]
    runs = {}
    for point in points:
        model, info = load_model(point["spec"], device, corpus.tokenizer_hash)
        _check_vocab(model, corpus.tokenizer, point["spec"])
        if point.get("tokens") is None or point.get("flops") is None:
            _passport_record(corpus, info)
        found = {"step": info["meta"].get("step"), "tokens": info["tokens"], "flops": info["flops"]}
        results = score_probes(model, corpus.tokenizer, probes, batch_size, norm, device, model_name=point["spec"])
        s = summarize(results)
        runs.setdefault(point["name"], []).append(
            {**{k: point[k] if point.get(k) is not None else v for k, v in found.items()},
             "spec": str(point["spec"]), "overall": s["overall"], "by_type": s["by_type"],
             "correct": [r["correct"] for r in results]})
    for run in runs.values():
        run.sort(key=lambda p: -1 if p["step"] is None else p["step"])
    return {"corpus": str(corpus_dir), "norm": norm, "n": len(probes), "probes_sha256": probes_sha256(probes),
            "runs": runs}


def describe_curves(curves, probes, references=None, seed=0, keys=None):
    """Plain sentences, type by type: where each run's last point ends against each reference model
    (references: name -> per-probe correctness on `probes`, the probes the curves were scored on),
    and whether the run was still rising between its last two points (paired bootstraps over keys,
    the probes' bootstrap_keys) -> (the sentences, each rise's verdict: [{run, type, rise}])."""
    cl, types = keys or bootstrap_keys(probes), list(dict.fromkeys(p.get("type", "recall") for p in probes))
    out, rises = [], []
    for run, points in curves["runs"].items():
        last = points[-1]
        for t in types:
            sel = [p.get("type", "recall") == t for p in probes]
            pick = lambda xs: [x for x, s in zip(xs, sel) if s]  # noqa: E731
            clusters = len(_labels(pick(cl)))
            for ref, ref_correct in (references or {}).items():
                d = bootstrap_diff(pick(last["correct"]), pick(ref_correct), pick(cl), seed=seed)
                out.append(f"type {t}: " + describe_difference(
                    f"{run} at its last point ({_point_label(last)})", last["by_type"][t], ref,
                    float(np.mean(pick(ref_correct))), d, clusters))
            if len(points) > 1:
                d = bootstrap_diff(pick(last["correct"]), pick(points[-2]["correct"]), pick(cl), seed=seed)
                out.append(f"type {t}: " + describe_rise(
                    f"{run} from {_point_label(points[-2])} to {_point_label(last)}", d, clusters))
                rises.append({"run": run, "type": t, "rise": rise(d, clusters)})
    return out, rises


def _point_label(point):
    """Where a curve's point stands: "step 400, 7.7e+12 FLOPs", with what its checkpoint's header holds."""
    step = [] if point.get("step") is None else [f"step {point['step']}"]
    if point.get("flops") is not None:
        return ", ".join(step + [f"{point['flops']:.3g} FLOPs"])
    return ", ".join(step + ([f"{point['tokens']:,} tokens"] if point.get("tokens") is not None else [])) or "a point"


def _curves_section(curves, probes, keys, correct, models, references, seed):
    """The report's learning curves: points with their per-probe correctness as bits, each reference
    model's accuracy overall and by type, and the sentences."""
    if curves["probes_sha256"] != probes_sha256(probes):
        raise EvalError("learning curves were scored on other probes than this comparison reads (a unit "
                        "verified or rejected since?); score them again with learning_curves")
    sentences, rises = describe_curves(curves, probes, {r: correct[r] for r in references or []}, seed, keys)
    return {"runs": {run: [dict(p, correct=bits(p["correct"])) for p in points]
                     for run, points in curves["runs"].items()},
            "references": {r: {"overall": models[r]["summary"]["overall"]["acc"],
                               **{t: s["acc"] for t, s in models[r]["summary"]["by_type"].items()}}
                           for r in references or []},
            "sentences": sentences, "rises": rises}


# ----------------------------------------------------------------------------- command line

def _print_summary(name, summary):
    print(f"{name}: {describe_vs_chance('accuracy', summary['overall'])}; exact match "
          f"{pct(summary['overall']['exact'])}")
    for key in ("by_level", "by_type", "by_unit"):
        for g, s in summary[key].items():
            print(f"  {key[3:]:5} {g:24} {cell(s):18} chance {pct(s['chance']):4} n={s['n']}")


def _check_flags(args):
    """Refuse a flag out of its range (check_settings) before anything is opened, loaded or scored."""
    check_settings(**{k: v for k, v in vars(args).items() if k in SETTINGS})


def cmd_score(args):
    """Print a model's accuracy on the corpus's probes, overall and by level, type and unit."""
    _check_flags(args)
    corpus, device = open_corpus(args.corpus), _device(args)
    units, probes = score_selection(corpus, args.units)
    model, _ = load_model(args.model, device, corpus.tokenizer_hash)
    _check_vocab(model, corpus.tokenizer, args.model)
    t0 = time.time()
    results = score_probes(model, corpus.tokenizer, probes, args.batch_size, args.norm, device, model_name=args.model)
    _print_summary(args.model, summarize(results, {u: corpus.units[u].get("level") for u in units}))
    print(f"{len(probes)} probes in {time.time() - t0:.1f} s")


def score_selection(corpus, given):
    """score's --units -> (units, their probes): ids and selectors as train.py's --units takes them
    (curriculum.select), each named once (a unit twice would count its probes twice), holding at least
    one probe; without --units, every unit with probes."""
    from curriculum import CurriculumError, select  # imported here, as in open_corpus
    if given is None:
        units = corpus.order()
    else:
        items = [s.strip() for g in given for s in g.split(",") if s.strip()]
        if not items:  # the flag with no name, or a cut-off list: it scored every unit, as if none were chosen
            raise EvalError(" ".join(["--units", *given]) + ": names no unit; name units or selectors, or leave "
                            "--units out to score every unit")
        twice = next((u for i, u in enumerate(items) if u in items[:i]), None)
        if twice is not None:
            raise EvalError(f"--units {' '.join(given)}: {twice!r} is named twice (its probes would count twice)")
        try:
            units = select(corpus, items)
        except CurriculumError as e:  # unknown unit or selector, and the selectors it takes
            raise EvalError(f"--units {' '.join(given)}: {e}") from None
    by_unit = {u: corpus.probes(u) for u in units}
    units = [u for u, ps in by_unit.items() if ps]
    if not units and not given:
        raise EvalError(f"{corpus.dir}: no unit has probes; nothing to score")
    if not by_unit:  # "verified" before any unit passed, say
        raise EvalError(f"--units {' '.join(given)}: selects no unit")
    if not units:  # once "no probes to score ... 0 probes" and exit 0, as if it were a measurement
        raise EvalError(f"--units {' '.join(given)}: no probe to score in {', '.join(by_unit)} (primitive units have "
                        "none)")
    return units, [p for u in units for p in by_unit[u]]


def cmd_verify(args):
    """Run the gate on one unit's adapter and exit 0 (pass) or 1 (fail)."""
    _check_flags(args)
    corpus = open_corpus(args.corpus)
    from curriculum import check_gate_on  # imported here, as in open_corpus
    check_gate_on(args.gate_on, corpus.unit_files())  # a typo would be recorded as a gate on every type
    r = verify(args.corpus, args.unit, args.model, args.adapter, args.threshold, args.retention_tolerance,
               _device(args), args.clear_of_chance, args.batch_size, args.norm, args.gate_on, min_gain=args.min_gain)
    g, gain = r["gated"], r["gated"]["gain"]
    print(f"{r['unit']}: before {cell(r['before'])}, after {cell(r['after'])}, chance {pct(r['after']['chance'])}")
    print(f"  gate on {g['types'] if g['types'] == 'all' else ', '.join(g['types'])}: "
          f"before {cell(g['before'])}, after {cell(g['after'])}, gain {signed_points(gain['diff'])} points "
          f"(95% CI {signed_points(gain['lo'])} to {signed_points(gain['hi'])})")
    for u, x in r["retention"].items():
        print(f"  retention {u}: {pct(x['before']['acc'])} -> {pct(x['after']['acc'])}{_fall_interval(x)}")
    print("PASS" if r["passed"] else "FAIL: " + "; ".join(r["reasons"]))
    raise SystemExit(0 if r["passed"] else 1)


def cmd_compare(args):
    """Write the comparison report of the named models and print its sentences."""
    _check_flags(args)
    specs = parse_models(args.models)
    if args.controls == []:  # given, with no pair: without the flag every pair is compared, overall only
        raise EvalError("--controls: name the pairs to compare by level and type, as A:B")
    controls = []
    for pair in args.controls or []:
        a, colon, b = pair.partition(":")
        if not colon:
            raise EvalError(f"--controls {pair!r}: write A:B with two model names")
        controls.append((a, b))
    r = compare(args.corpus, specs, args.out, args.retention, controls or None, args.samples, _device(args),
                args.batch_size, args.norm, args.seed)
    for s in r["chance"] + [c["sentence"] for c in r["comparisons"]]:
        print(s)
    print(f"wrote {Path(args.out) / 'report.md'}, report.json; figure: {r['plot']}")


def parse_models(models):
    """compare's NAME=CHECKPOINT[+ADAPTER] arguments -> {name: spec}; a name given twice would leave
    one model of the two in the report, without a word."""
    specs = {}
    for m in models:
        name, eq, spec = m.partition("=")
        if not eq or not name or not spec:
            raise EvalError(f"model {m!r}: write NAME=CHECKPOINT or NAME=CHECKPOINT+ADAPTER")
        if name in specs:  # compare() checks each name's characters
            raise EvalError(f"model {m!r}: the name {name!r} is given twice")
        specs[name] = spec
    return specs


def cmd_sample(args):
    """Print a few generations of a model after a prompt."""
    _check_flags(args)
    corpus, device = open_corpus(args.corpus), _device(args)
    spec = args.model + (f"+{args.adapter}" if args.adapter else "")
    model, _ = load_model(spec, device, corpus.tokenizer_hash)
    for i, text in enumerate(sample(model, corpus.tokenizer, args.prompt, args.n, args.max_new_tokens,
                                    args.temperature, args.top_k, args.seed, device)):
        print(f"--- sample {i} (seed {args.seed}, temperature {args.temperature}, top-k {args.top_k})")
        print(args.prompt + text)


def _device_flag(p):
    p.add_argument("--device", default="cpu", help="torch device to run on: auto, cpu, cuda, cuda:N or mps "
                   "(default cpu)")


def _device(args):
    """--device as torch names it, checked as train.py checks it: one line for a device this machine lacks."""
    from train import resolve_device
    return str(resolve_device(args.device))


def build_parser():
    """The command line: one subcommand per function of this module a person runs by hand."""
    p = argparse.ArgumentParser(description="accrete evaluation: score probes, verify a unit's adapter "
                                "(the gate the passport records), compare stages, sample generations.")
    sub = p.add_subparsers(dest="command", required=True)
    scoring = argparse.ArgumentParser(add_help=False)
    _device_flag(scoring)
    scoring.add_argument("--batch-size", type=int, default=64, help="(probe, choice) rows per forward pass "
                         "(default 64)")
    scoring.add_argument("--norm", choices=("sum", "mean"), default="sum", help="a choice's score: the sum of its "
                         "tokens' log-probabilities, or their per-token mean; one of sum, mean (default sum)")
    s = sub.add_parser("score", parents=[scoring], help="score a model on the corpus's probes")
    s.add_argument("corpus", help="the corpus directory whose probes are scored")
    s.add_argument("--model", required=True, help="the model: CHECKPOINT or CHECKPOINT+ADAPTER")
    s.add_argument("--units", nargs="*", help="score only these units, each named once: ids and selectors as "
                   "train.py's --units takes them (verified, knowledge, level:N, ...; default: every unit with probes)")
    s.set_defaults(run=cmd_score)
    v = sub.add_parser("verify", parents=[scoring], help="the per-adapter gate: exit 0 pass, 1 fail, 2 error")
    v.add_argument("corpus", help="the corpus directory; its passport receives the verdict")
    v.add_argument("--unit", required=True, help="the unit whose adapter is verified")
    v.add_argument("--model", required=True, help="the base checkpoint the adapter was trained on")
    v.add_argument("--adapter", required=True, help="the adapter directory or adapter.safetensors file")
    v.add_argument("--threshold", type=float, default=0.5, help="minimum accuracy after the adapter (default 0.5)")
    v.add_argument("--gate-on", default="recall", help="probe type whose half the accuracy gate reads (default "
                   "recall; every type when the unit has none of it; 'all' for every type)")
    v.add_argument("--clear-of-chance", action=argparse.BooleanOptionalAction, default=True,
                   help="require the 95%% interval's lower bound above chance (default; --no-clear-of-chance "
                   "opens that part of the gate, for plumbing tests on micro models)")
    v.add_argument("--retention-tolerance", type=float, default=0.1, help="largest allowed accuracy drop "
                   "on earlier verified units (default 0.1)")
    v.add_argument("--min-gain", type=float, default=0.1, help="least rise of the gated accuracy over the "
                   "model without the adapter (default 0.1: a unit the model already knew is not taught by it)")
    v.set_defaults(run=cmd_verify)
    c = sub.add_parser("compare", parents=[scoring], help="report.md/.json/.png comparing models")
    c.add_argument("corpus", help="the corpus directory whose probes every model is scored on")
    c.add_argument("models", nargs="+", metavar="NAME=CHECKPOINT[+ADAPTER]", help="the models, each with its name")
    c.add_argument("--out", required=True, help="directory for report.md, report.json, and report.png and "
                   "curves.png where matplotlib is installed")
    c.add_argument("--retention", nargs="*", metavar="NAME", help="merged models in accumulation order, for "
                   "the retention matrix")
    c.add_argument("--controls", nargs="*", metavar="A:B", help="pairs compared by level and type, "
                   "e.g. curriculum:shuffled (default: every pair, overall only)")
    c.add_argument("--samples", type=int, default=0, help="generations per model for a few fixed prompts "
                   "(default 0)")
    c.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and the samples (default 0)")
    c.set_defaults(run=cmd_compare)
    add_seeds_parser(sub)
    g = sub.add_parser("sample", help="print generations of a model")
    g.add_argument("--corpus", required=True, help="the corpus whose tokenizer the model uses")
    g.add_argument("--model", required=True, help="the checkpoint to sample from")
    g.add_argument("--adapter", help="an adapter to load onto the checkpoint first")
    g.add_argument("--prompt", default="", help="text the generations continue (default: none)")
    g.add_argument("--n", type=int, default=3, help="number of generations (default 3)")
    g.add_argument("--max-new-tokens", type=int, default=64, help="tokens per generation at most (default 64)")
    g.add_argument("--temperature", type=float, default=0.8, help="sampling temperature; 0 is greedy "
                   "(default 0.8)")
    g.add_argument("--top-k", type=int, default=40, help="sample among the k likeliest tokens (default 40)")
    g.add_argument("--seed", type=int, default=0, help="seed of the sampling generator (default 0)")
    _device_flag(g)
    g.set_defaults(run=cmd_sample)
    return p


def main(argv=None):
    try:
        run_subcommand(build_parser(), argv)  # Ctrl-C is one line there: verify records its verdict only at its end
    except Exception:  # a crash is an error (2): verify's 1 means a unit failed its gate, and a script acts on it
        traceback.print_exc()
        raise SystemExit(2)


if __name__ == "__main__":
    main()
