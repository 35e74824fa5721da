"""
The whole accrete experiment in one command, on the built-in world or on your own units:

    python ladder.py                      # tiny preset, CPU, minutes; report in runs/ladder/report/
    python ladder.py --seeds 5            # five paired seeds; every comparison over seeds
    python ladder.py --preset smoke       # one GPU, first: all six stages with bf16 and torch.compile
    python ladder.py --preset small       # one GPU: GPT-2-124M-shaped model on a 100M-token world
    python ladder.py --units my_units/    # your own unit files (the primitive support is added)

Stages (each a call into curriculum.py, train.py and evaluate.py, in-process):
  1 corpus    the world, or your units with what a base needs to learn them (practice.py); the corpus
  2 base      pretrain on the primitive units
  3 grow      per knowledge unit, in curriculum order: a LoRA on the current model (rehearsing the units
              verified before it), the gate, and a merge if it passes, so the next adapter trains on top
  4 finetune  the base fine-tuned on the verified units (+ primitive text), mixed or level by level
  5 scratch   random init, the verified units + a primitive share, as much compute as the grown model
              cost; in curriculum order (rehearsing earlier levels) and the same rows shuffled (units on
              one level: shuffled alone), with snapshots for the learning curve
  6 compare   every model on the same probes: intervals, controls, the learning curve

Budgets are epochs over what a stage reads (presets.py), so an adapter's steps follow from its unit's
size. Resumable: run the same command again after a stop at any point.
"""

import argparse
import contextlib
import dataclasses
import fcntl
import json
import math
import os
import shlex
import shutil
import signal
import sys
import time
from pathlib import Path

import bpe
import curriculum
import evaluate
import lora
import machine
import practice
import presets
from common import SEED_RULE, add_options, atomic_write_bytes, atomic_write_text, check_writable, fail, in_directory, \
    interrupted, json_kind, same_file, seed_ok, sha256_file
from model import GPT, GPTConfig, weights_file
from presets import UNTRAINED, Settings, settings_for, settings_now
from report import aggregate_seeds, control_lines, parse_control, render_results
from stats import pct
from train import TrainConfig, check_fits, flops_per_token, resolve_device, train

ROOT = Path(__file__).resolve().parent
WORLDS = ROOT / "data" / "world" / "units"  # the built-in worlds, made on first use
STAGES = ("corpus", "base", "grow", "finetune", "scratch", "compare")


def _as_given(key, value):
    """A setting as the option that gives it: "--lora-epochs 4.0", "without --n-layer" (the preset's)."""
    flag = {"units_dir": "--units", "primitive_dir": "--primitive"}.get(key, "--" + key.replace("_", "-"))
    if value is None or value is False:
        return f"without {flag}"
    return flag if value is True else f"{flag} {value}"


class LadderError(ValueError):
    """A ladder that cannot run or continue as asked."""


def curve_fractions(text):
    """--curve "0.25,0.5,1" -> the sorted fractions of the scratch compute; a LadderError for any other."""
    try:
        fractions = sorted({float(f) for f in text.split(",")})
    except ValueError:
        fractions = []
    if not fractions or not all(0 < f <= 1 for f in fractions):
        raise LadderError(f"--curve {text!r}: give fractions of the scratch compute, each above 0 and at most 1")
    return fractions


def check_seeds(seed, seeds):
    """Refuse seeds train.py would refuse only once the corpus and the base are written: each of the
    paired runs' seeds (seed to seed + seeds - 1) must be a whole number from 0 to 2**32 - 1."""
    if seeds < 1:
        raise LadderError("--seeds must be at least 1")
    if not seed_ok(seed):
        raise LadderError(f"--seed {seed}: must be {SEED_RULE}")
    if not seed_ok(seed + seeds - 1):
        raise LadderError(f"--seeds {seeds} with --seed {seed}: seed {seed + seeds - 1} is past 2**32 - 1 (each "
                          f"must be {SEED_RULE})")


def snapshot_steps(fractions, steps):
    """The steps of a scratch run of `steps` kept for its learning curve, one per fraction of it; none
    at the last step, which is the run's own output (a snapshot there would score it twice)."""
    return tuple(sorted({max(1, round(f * steps)) for f in fractions} - {steps}))


def check_settings(s, preset, units_dir=None, primitive_dir=None, begun=False):
    """Refuse what a ladder could only fail on later, before its directory is written: a share or an
    accuracy outside [0, 1], a budget that is not positive, a model that cannot be built, a device
    this machine lacks, a missing units directory or one a unit add would refuse (begun: every run's
    corpus holds its units, read through when they were added)."""
    for name in ("threshold", "tolerance", "min_gain"):
        if not 0 <= getattr(s, name) <= 1:
            raise LadderError(f"--{name.replace('_', '-')} {getattr(s, name)}: must be between 0 and 1")
    for name in ("lora_primitive_share", "lora_replay", "ft_primitive_share", "primitive_share", "replay"):
        if not 0 <= getattr(s, name) < 1:  # a share of 1 leaves the stage none of its own rows
            raise LadderError(f"--{name.replace('_', '-')} {getattr(s, name)}: must be at least 0 and below 1")
    for name in ("batch_size", "grad_accum", "base_epochs", "lora_epochs", "ft_epochs", "compute", "lora_r",
                 "lora_alpha", "retention_probes", "base_lr", "lora_lr", "ft_lr", "scratch_lr", "practice_copies"):
        if not 0 < getattr(s, name) < math.inf:
            raise LadderError(f"--{name.replace('_', '-')} {getattr(s, name)}: must be positive and finite")
    for name in ("keep_steps", "samples", "lora_min_steps", "lora_warmup"):
        if getattr(s, name) < 0:
            raise LadderError(f"--{name.replace('_', '-')} {getattr(s, name)}: must be 0 or more")
    curve_fractions(s.curve)
    if s.tokenizer == "bpe" and s.vocab_size < bpe.MIN_VOCAB:
        raise LadderError(f"--vocab-size {s.vocab_size}: the BPE needs at least {bpe.MIN_VOCAB} (256 bytes + eot)")
    if s.tokenizer == "gpt2":
        bpe.gpt2()  # a CurriculumError says tiktoken's gpt2 files are not at hand
    # a ValueError names a model that cannot be built, a TrainError one or a batch too big for the device's
    # memory, or a device this machine lacks
    config = GPTConfig.preset(preset, n_layer=s.n_layer, n_head=s.n_head, n_embd=s.n_embd, block_size=s.block_size,
                              vocab_size=s.vocab_size)
    check_fits(config, resolve_device(s.device), s.batch_size)
    check_unit_dirs(units_dir, primitive_dir, whole=not begun)
    prepare = world_module()
    if s.world_tokens is not None and s.world_tokens < prepare.MIN_TARGET_TOKENS:
        raise LadderError(f"--world-tokens {s.world_tokens}: use at least {prepare.MIN_TARGET_TOKENS}")
    files = run_files(s, preset, units_dir) if s.gate_on != "all" else None
    if files:  # no files at all: stage 1 names that
        curriculum.check_gate_on(s.gate_on, files)


def check_unit_dirs(units_dir, primitive_dir, whole=True):
    """Refuse --units and --primitive directories a run could only fail on once written: a unit file a
    unit add would refuse (named by its line; each file read through where whole, else its header), a
    knowledge unit among the primitive ones, or no knowledge unit to grow."""
    kinds = {}
    for flag, d in (("--units", units_dir), ("--primitive", primitive_dir)):
        if d and not Path(d).is_dir():
            raise LadderError(f"{flag} {d}: " + ("is a file; give the directory that holds the unit files"
                                                 if Path(d).exists() else "no such directory"))
        if d:  # a directory named like a unit file, or a unit add would refuse: now, not once the run is written
            kinds[flag] = {f: unit_kind(f, whole) for f in unit_files_in(d)}
    if primitive_dir and same_file(primitive_dir, units_dir):  # else refused in stage 1 as a duplicate unit id
        raise LadderError(f"--primitive {primitive_dir}: is the --units directory; give the primitive units a "
                          "directory of their own")
    knowledge = next((f for f, kind in kinds.get("--primitive", {}).items() if kind == "knowledge"), None)
    if knowledge:
        raise LadderError(f"--primitive {primitive_dir}: {knowledge.name} is a knowledge unit; the directory holds the "
                          "primitive units a base pretrains on (knowledge units go in --units)")
    if kinds.get("--units") and "knowledge" not in kinds["--units"].values():
        raise LadderError(f"--units {units_dir}: holds no knowledge unit, only primitive ones: nothing to grow")


def unit_kind(file, whole=True):
    """A unit file's kind (knowledge or primitive), from the file read through as add reads it (whole) or
    from its header; a LadderError naming a file that cannot be read."""
    try:
        return curriculum.inspect_unit(file)["header"]["kind"] if whole else \
            next(curriculum.iter_records(file))[2]["kind"]
    except OSError as e:  # no read permission, an I/O error: one line, not a traceback
        raise LadderError(f"{file}: cannot be read ({e.strerror or e})") from None


def run_files(s, preset, units_dir):
    """The unit files a run reads (support units aside): the built-in world's, made here if they are
    not yet (stage 1 would make them), or those of --units."""
    return unit_files_in(units_dir) if units_dir else world_files(s, preset)


def unit_files_in(d):
    """The unit files (*.jsonl) in directory d, sorted; a LadderError naming one that is not a file."""
    files = sorted(Path(d).glob("*.jsonl"))
    for f in files:
        if not f.is_file():
            raise LadderError(f"{f}: is a directory, not a unit file" if f.is_dir() else
                              f"{f}: not a unit file (a broken link, or not a regular file)")
    return files


def check_given(given, s, preset, units_dir=None, primitive_dir=None):
    """Refuse a setting given on the command line (given: the names of those given) that the ladder
    would save in ladder.json and never use: the built-in world's size with --units or under a token
    count (the preset's or one given), practice's settings where no practice is added, a positive
    control on a probe type no unit has (the default's types are the built-in world's: with other
    units it shows no line)."""
    if "control" in given:
        files = run_files(s, preset, units_dir)
        unknown = [t for t in parse_control(s.control) if files and not curriculum.has_probe_type(files, t)]
        if unknown:
            raise LadderError(f"--control {s.control}: no unit has probes of type {unknown[0]!r}")
    if units_dir:
        for name in ("world_size", "world_tokens", "cooccur_docs"):
            if name in given:
                raise LadderError(f"--{name.replace('_', '-')} goes with the built-in world, not --units (your "
                                  "units are the world)")
        practised = [n for n in ("practice_copies", "world_seed") if n in given]
        why = no_practice(units_dir, primitive_dir) if practised else None
        if why:
            raise LadderError(f"--{practised[0].replace('_', '-')} with {why}: no practice is added (only "
                              "knowledge units alone get it), so it would do nothing")
    elif "practice_copies" in given:
        raise LadderError("--practice-copies goes with --units (the built-in world has its own practice)")
    elif "world_size" in given and s.world_tokens is not None:
        if "world_tokens" in given:
            raise LadderError(f"--world-size {s.world_size} with --world-tokens {s.world_tokens}: the token "
                              "count sets the world's size; give one of them")
        raise LadderError(f"--world-size {s.world_size} with --preset {preset}, whose world is --world-tokens "
                          f"{s.world_tokens}: give --world-tokens instead")


def no_practice(units_dir, primitive_dir):
    """Why no practice is added to these units, or None (unit_files adds it then): with --units,
    --world-seed and --practice-copies set only the practice and the primitive text added with it."""
    if primitive_dir:
        return "--primitive"
    files = unit_files_in(units_dir)
    if any(next(curriculum.iter_records(f))[2]["kind"] == "primitive" for f in files):
        return f"--units {units_dir}, which has primitive units of its own"
    return None


# ----------------------------------------------------------------------------- the run directory

def read_object(file):
    """The JSON object in one of the run directory's own files; a LadderError naming the file for one
    that is damaged (cut short, emptied, another kind of value)."""
    try:
        value = json.loads(file.read_text())
    except ValueError as e:  # invalid JSON, or bytes that are not UTF-8
        raise LadderError(f"{file}: not valid JSON ({e})") from None
    if not isinstance(value, dict):
        raise LadderError(f"{file}: must be a JSON object, not a JSON {json_kind(value)}")
    return value


def read_state(file):
    """ladder.json: the settings a run started with and the directories it was given."""
    state = read_object(file)
    if not isinstance(state.get("settings"), dict):
        raise LadderError(f'{file}: "settings" must be a JSON object of the run\'s settings')
    outs = state.get("outs", [])
    if not (isinstance(outs, list) and all(isinstance(o, str) for o in outs)):
        raise LadderError(f'{file}: "outs" must be a list of the directories the run was given, not {outs!r}')
    for k in ("preset", "units_dir", "primitive_dir"):
        if not isinstance(state.get(k), (str, type(None))):
            raise LadderError(f'{file}: "{k}" must be a string or null, not {state[k]!r}')
    return state


def read_stage_seconds(file):
    """stage_seconds.json: each training stage's seconds over every invocation so far, compare's of its
    last run ({} before the first)."""
    seconds = read_object(file) if file.is_file() else {}
    for name, v in seconds.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < math.inf:
            raise LadderError(f'{file}: "{name}" must be the seconds the stage took (a number, 0 or more), '
                              f"not {v!r}")
    return seconds


class Run:
    """One ladder's directory: its settings (fixed for its life), its corpus, and what the passport
    says is finished there, each file checked against the sha256 recorded for it."""

    def __init__(self, out, preset, s, units_dir=None, primitive_dir=None, log=print, save=True):
        """The run in out, checked (a LadderError or ValueError names what is wrong) and, with save,
        its settings written to out/ladder.json if they are not there yet."""
        self.out, self.preset, self.s, self.log = check_writable(out), preset, s, log
        for name in ("ladder.json", "stage_seconds.json"):  # a directory in a file's place
            check_writable(self.out / name, "file")
        self.units_dir = Path(units_dir) if units_dir else None
        self.primitive_dir = Path(primitive_dir) if primitive_dir else None
        self.corpus_dir = self.out / "corpus"
        dirs = ("units_dir", "primitive_dir")  # as absolute paths: a run may continue from another directory
        saved = {"preset": preset, "settings": dataclasses.asdict(s),
                 **{k: d and str(Path(d).resolve()) for k, d in zip(dirs, (units_dir, primitive_dir))}}
        state = self.out / "ladder.json"
        # the passport names files by the paths they were written at, under each directory the run was
        # given: it may since have moved, or been given from another working directory
        self.outs = [str(out)]
        if state.is_file():
            before = read_state(state)
            self.outs = before.pop("outs", [str(out)])
            before["settings"] = settings_now(before["settings"], before.get("preset"))
            # where it runs, and what compare reads off the models, may change (UNTRAINED); what it trains may not
            before["settings"].update({k: getattr(s, k) for k in UNTRAINED})
            before.update({k: before.get(k) and str(Path(before[k]).resolve()) for k in dirs})
            if before != saved:
                was = dict(before["settings"], **{k: before.get(k) for k in ("preset",) + dirs})
                now = dict(saved["settings"], **{k: saved[k] for k in ("preset",) + dirs})
                changed = [_as_given(k, was.get(k)) for k in sorted(now) if was.get(k) != now[k]]
                raise LadderError(f"{state}: this run was started with other settings ({', '.join(changed)});"
                                  " continue it with the same options, or use another --out")
        self.stage_seconds()  # a damaged file is refused now, not once every stage has run
        # what a refused first corpus must leave as it was; None once a corpus is in (nothing is discarded then)
        self.before = None if (self.corpus_dir / "passport.jsonl").is_file() else self.held()
        if save and (not state.is_file() or str(out) not in self.outs):
            self.outs = [o for o in self.outs if o != str(out)] + [str(out)]
            atomic_write_text(state, json.dumps(dict(saved, outs=self.outs), indent=1))

    def stage_seconds(self):
        return read_stage_seconds(self.out / "stage_seconds.json")

    @property
    def corpus(self):
        return curriculum.Corpus(self.corpus_dir)

    # what a run writes before its first corpus is in, besides the run directory itself
    FIRST_WRITES = ("corpus", "support", "ladder.json", "stage_seconds.json")

    def held(self):
        """What the run directory holds where a first corpus stage writes: each path there and, for a
        file, its bytes (one saved again is put back: ladder.json's outs, stage_seconds.json's time, a
        support unit of the same name). A corpus directory is only named: init refuses one that exists."""
        held = {self.out: None} if self.out.is_dir() else {}
        for p in (self.out / name for name in self.FIRST_WRITES):
            if p.is_file():
                held[p] = p.read_bytes()
            elif p.is_dir():  # and what is in it: support units are written beside files already there
                held[p] = None
                held.update({q: q.read_bytes() if q.is_file() and p.name == "support" else None for q in p.iterdir()})
        return held

    def discard(self):
        """Undo what this invocation wrote before its first corpus was refused (its settings, support
        units, a corpus of no unit), and the run directory if it made it and that empties it: retried
        once the input is mended, the run starts afresh, its tokenizer trained on the files as they are
        then. What was there before it started (a user's files, an earlier run's) stays as it was."""
        now = self.held()
        for p in sorted(now.keys() - self.before.keys(), key=lambda p: -len(p.parts)):  # the deepest first
            if p == self.out:
                with contextlib.suppress(OSError):
                    p.rmdir()  # only if nothing else is in it
            elif p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
        for p, data in self.before.items():
            if data is not None and now.get(p) != data:
                atomic_write_bytes(p, data)

    def model_config(self):
        s = self.s
        return GPTConfig.preset(self.preset, vocab_size=self.corpus.vocab_size, n_layer=s.n_layer, n_head=s.n_head,
                                n_embd=s.n_embd, block_size=s.block_size)

    def tokens_per_step(self):
        return self.s.batch_size * self.s.grad_accum * self.model_config().block_size

    def steps(self, tokens):
        """Optimizer steps that read about `tokens` tokens."""
        return max(1, math.ceil(tokens / self.tokens_per_step()))

    def here(self, recorded):
        """Where a path the passport recorded under one of the run's directories lies now."""
        for out in sorted(self.outs, key=len, reverse=True):
            try:
                return self.out / Path(recorded).relative_to(out)
            except ValueError:
                pass
        return Path(recorded)

    def finished(self, out_dir, event="model_trained", missing_ok=False):
        """The passport's event of the training into out_dir (its paths as they lie now), if the file it
        names is intact (or, with missing_ok, deleted since); a file that differs from its recorded
        sha256 is an error (never used)."""
        key = ("adapter", "adapter_sha256") if event == "adapter_trained" else ("checkpoint", "checkpoint_sha256")
        for e in reversed(self.corpus.passport.events(event)):
            if e.get("out_dir") and self.here(e["out_dir"]) == Path(out_dir):
                e = dict(e, **{k: str(self.here(e[k])) for k in ("out_dir", "checkpoint", "adapter", "init") if e.get(k)})
                if not Path(e[key[0]]).is_file():
                    return e if missing_ok else None
                if sha256_file(e[key[0]]) != e[key[1]]:
                    raise LadderError(f"{e[key[0]]}: sha256 differs from the passport's {event} event: the file "
                                      "changed after it was written; delete it to train it again")
                return e
        return None

    def train(self, out_dir, event="model_trained", **kw):
        """Train into out_dir unless the passport says it is done; a stopped training resumes."""
        done = self.finished(out_dir, event)
        if done:
            self.log(f"    {out_dir.name}: done earlier ({done['tokens']:,} tokens)")
            return done
        s = self.s
        cfg = TrainConfig(out_dir=str(out_dir), corpus=str(self.corpus_dir), batch_size=s.batch_size,
                          grad_accum=s.grad_accum, seed=s.seed, device=s.device, compile=s.compile, resume=True,
                          log_interval=max(1, kw["max_steps"] // 5), ckpt_interval=max(1, kw["max_steps"] // 4),
                          eval_iters=5, **{"warmup": max(1, kw["max_steps"] // 20), **kw})
        train(cfg, log=lambda m: self.log("    " + m))
        return self.finished(out_dir, event)

    def device(self):
        return str(resolve_device(self.s.device))


# ----------------------------------------------------------------------------- 1 corpus

def world_window(s, preset):
    """The tokens a training window of this run reads (the model's context + 1), at least the tiny
    model's (prepare.WINDOW): the built-in world never puts an ood premise pair within one."""
    return max(world_module().WINDOW, GPTConfig.preset(preset, block_size=s.block_size).block_size + 1)


def world_dir(s, window):
    """Where the built-in world of these settings is kept: one directory per size, cooccur documents,
    window and seed."""
    name = s.world_size if s.world_tokens is None else f"tokens-{s.world_tokens}"
    name += f"-{s.cooccur_docs}" * (s.cooccur_docs != "plain")  # a world of its own: two ladders may make both
    name += f"-window-{window}" * (window != world_module().WINDOW)
    return WORLDS / (name if s.world_seed == 0 else f"{name}-seed-{s.world_seed}")


def world_module():
    """data/world/prepare.py, the built-in world's generator, imported."""
    if str(ROOT / "data" / "world") not in sys.path:  # called per seed and by check_settings
        sys.path.insert(0, str(ROOT / "data" / "world"))
    import prepare
    return prepare


def world_files(s, preset, log=print):
    """The built-in world's unit files for these settings (and the preset's context), made the first
    time they are asked for and again when prepare.py has changed since; made whole or not at all, so
    a stopped generation leaves no part of a world to train on."""
    prepare, window = world_module(), world_window(s, preset)
    world = world_dir(s, window)
    made = {"prepare_sha256": sha256_file(prepare.__file__), "seed": s.world_seed, "size": s.world_size,
            "tokens": s.world_tokens, "cooccur_docs": s.cooccur_docs, "window": window}
    stamp = world / "world.json"
    world.parent.mkdir(parents=True, exist_ok=True)
    with open(world.with_name(f"{world.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two ladders starting at once make it once
        if not (stamp.is_file() and json.loads(stamp.read_text()) == made):
            log(f"    making the built-in world in {world}")
            tmp, old = (world.with_name(f"{world.name}.{what}-{os.getpid()}") for what in ("tmp", "old"))
            try:
                try:
                    prepare.generate(tmp, seed=s.world_seed, size=s.world_size, target_tokens=s.world_tokens,
                                     cooccur_docs=s.cooccur_docs, window=window)
                except prepare.WindowError as e:
                    raise LadderError(f"the model's context of {window - 1} tokens is longer than the built-in "
                                      f"world's {e.unit} can keep its ood premises apart for; give a larger "
                                      "--world-tokens or a shorter --block-size") from None
                (tmp / "world.json").write_text(json.dumps(made) + "\n")
                if world.is_dir():
                    os.rename(world, old)
                os.rename(tmp, world)
            finally:
                for d in (tmp, old):
                    shutil.rmtree(d, ignore_errors=True)
    return sorted(world.glob("*.jsonl"))


def unit_files(run):
    """The unit files of this run, and the support units added for them (practice.py)."""
    if not run.units_dir:
        return world_files(run.s, run.preset, run.log)
    files = unit_files_in(run.units_dir)
    if not files:
        raise LadderError(f"{run.units_dir}: no unit files (*.jsonl)")
    check_units_unchanged(run, files)  # before the support units made from them are written again
    if run.primitive_dir:
        prim = unit_files_in(run.primitive_dir)
        if not prim:
            raise LadderError(f"{run.primitive_dir}: no unit files (*.jsonl)")
        check_units_unchanged(run, prim)
        return files + prim
    if no_practice(run.units_dir, None):  # primitive units of their own
        return files
    knowledge = [f for f in files if next(curriculum.iter_records(f))[2]["kind"] == "knowledge"]
    return files + practice.support(knowledge, run.out / "support", seed=run.s.world_seed,
                                    copies=run.s.practice_copies, log=run.log)


def check_units_unchanged(run, files):
    """Refuse, in a continued run, a unit file of the user's that differs from the unit of its id the run's
    corpus holds: edited since the run began, which the run's models were not trained on."""
    if not (run.corpus_dir / "passport.jsonl").is_file():
        return
    changed = next(changed_units(run, files), None)
    if changed:
        raise LadderError(f"{changed[0]}: differs from the unit {changed[1]!r} the run's corpus holds (edited since "
                          "the run began?); put it back as it was to continue the run, or start the run anew in "
                          "another --out")


def changed_units(run, files):
    """(file, unit id) of each of the unit files whose id the run's corpus holds with other content."""
    c = run.corpus
    for f in files:
        uid = next(curriculum.iter_records(f))[2]["unit"]
        if uid in c.units and c.added[uid]["sha256"] != sha256_file(f):
            yield f, uid


def stage_corpus(run):
    s, files = run.s, unit_files(run)
    if not (run.corpus_dir / "passport.jsonl").is_file():
        curriculum.init(run.corpus_dir, files, vocab_size=s.vocab_size, tokenizer=s.tokenizer)
    try:  # idempotent: finishes a stopped add; says, per knowledge unit, what it takes to pass the gate
        curriculum.add(run.corpus_dir, files, log=lambda m: None if "added" in m else run.log("    " + m),
                       gate_on=s.gate_on, threshold=s.threshold, clear_of_chance=s.clear_of_chance)
    except curriculum.CurriculumError:
        check_made_alike(run, files)  # a refusal that another version of a generator caused, named as that
        raise
    c = run.corpus
    block = run.model_config().block_size  # a probe that cannot be scored is refused now, not once models are trained
    for unit in c.knowledge_units():
        evaluate.encode_probes(c.tokenizer, c.probes(unit), block, f"--preset {run.preset} (--block-size)")
    run.log(f"    {len(c.units)} units ({len(c.knowledge_units())} knowledge), vocab {c.vocab_size}, "
            f"{sum(h['tokens'] for h in c.units.values()):,} train tokens")


def check_made_alike(run, files):
    """Refuse a unit the ladder makes (the built-in world, the support units of --units) that differs from
    the one a continued run's corpus holds: another version of the generator made it, which add refuses as
    a new unit under a taken id."""
    # the user's own units were compared before (check_units_unchanged)
    made = [f for f in files if not run.units_dir or Path(f).parent == run.out / "support"]
    changed = next(changed_units(run, made), None)
    if changed:
        maker = "practice.py" if run.units_dir else "data/world/prepare.py"
        raise LadderError(f"{changed[0]}: made by this version of {maker}, it differs from the unit {changed[1]!r} "
                          "the run's corpus holds, which an earlier version made; continue the run with that "
                          "version, or start it anew in another --out")


# ----------------------------------------------------------------------------- 2 base

def stage_base(run):
    s, c = run.s, run.corpus
    tokens = s.base_epochs * sum(c.units[u]["tokens"] for u in c.primitive_units())
    m = run.model_config()
    run.train(run.out / "base", mode="pretrain", units="primitive", max_steps=run.steps(tokens), lr=s.base_lr,
              meta={"units": []}, preset=run.preset, vocab_size=m.vocab_size, n_layer=m.n_layer, n_head=m.n_head,
              n_embd=m.n_embd, block_size=m.block_size)


# ----------------------------------------------------------------------------- 3 grow

def stage_grow(run):
    """Sequential accumulation: each verified adapter is merged before the next one trains. Returns the
    merged models kept [(name, checkpoint dir)] and the compute (FLOPs) every adapter cost.

    Of the merged models only `keep_steps` milestones and the latest stay on disk (a 100M-token world
    has hundreds of units); a pruned one stays in the passport, so a resumed run goes past it."""
    know = run.corpus.knowledge_units()
    milestones = {round(j * len(know) / run.s.keep_steps) for j in range(1, run.s.keep_steps + 1)}
    current, passed, kept, flops = run.out / "base", [], [], 0
    for i, unit in enumerate(know, 1):
        d = run.out / "grow" / f"{i:02d}-{unit}"
        run.log(f"  grow {i}/{len(know)}: {unit}")
        adapter = grow_adapter(run, d, unit, current, passed)
        flops += adapter["flops"]
        if grow_verdict(run, unit, current, adapter)["passed"]:
            current = merge(run, current, d / "merged", adapter)
            if kept and kept[-1][0] not in milestones:
                prune(kept.pop()[2])
            kept.append((i, f"step{i}-{unit}", current))
            passed.append(unit)
    for _, _, path in kept:  # deleted since it was made: merged again, as a deleted training is trained again
        restore(run, path)
    return [(name, path) for _, name, path in kept], flops


def needed(run, current):
    """The model a step still to run trains, scores or merges on: merged again first if it was deleted
    since it was made (or pruned), as a deleted training is trained again."""
    if Path(current) != run.out / "base":  # the base is trained again by its own stage
        restore(run, current)
    return current


def restore(run, merged_dir):
    """Merge again a merged model deleted since it was made, from the model and adapter its passport
    event names; that model too where it is gone (pruned), deleted again after."""
    if weights_file(merged_dir, "model.safetensors").is_file():  # there: not hashed on every step (loading checks it)
        return
    e = run.finished(merged_dir, missing_ok=True)
    if e is None:  # not made yet: the next step makes it
        return
    run.log(f"    {e['checkpoint']}: deleted since it was made; merging it again")
    init = run.finished(e["init"], missing_ok=True)  # the base, or a merged model
    gone = init and not Path(init["checkpoint"]).is_file()
    if gone:
        restore(run, Path(e["init"]))
    file, meta = lora.merge_files(e["init"], e["adapter"], merged_dir)
    run.corpus.passport.append("model_trained", **lora.merged_event(meta, merged_dir, file, e["init"], e["adapter"]))
    if gone:
        prune(Path(e["init"]))


def prune(checkpoint_dir):
    """Delete a merged model that is no milestone (its passport event stays)."""
    for f in checkpoint_dir.glob("*") if checkpoint_dir.is_dir() else ():
        f.unlink()
    if checkpoint_dir.is_dir():
        checkpoint_dir.rmdir()


def adapter_steps(s, tokens, tokens_per_step, replay):
    """An adapter's optimizer steps for a unit of `tokens` (Settings s): lora_epochs over the unit's own
    rows (the share left after the primitive and replay shares), and at least lora_min_steps steps'
    worth of its own rows."""
    own = (1 - s.lora_primitive_share) * (1 - replay)
    return max(math.ceil(s.lora_min_steps / own), math.ceil(s.lora_epochs * tokens / own / tokens_per_step), 1)


def grow_adapter(run, d, unit, current, passed):
    """Train the unit's adapter on the current model, rehearsing the units verified before it."""
    s = run.s
    replay = s.lora_replay if passed else 0.0
    steps = adapter_steps(s, run.corpus.units[unit]["tokens"], run.tokens_per_step(), replay)
    if not run.finished(d, "adapter_trained"):
        needed(run, current)
    return run.train(d, event="adapter_trained", mode="lora", init=str(current), units=unit,
                     primitive_share=s.lora_primitive_share, replay=replay, replay_units=",".join(passed) or None,
                     max_steps=steps, warmup=max(1, min(s.lora_warmup, steps // 2)), lr=s.lora_lr, weight_decay=0.0,
                     lora_r=s.lora_r, lora_alpha=s.lora_alpha, meta={"units": [unit]})


def grow_verdict(run, unit, current, adapter):
    """The gate's verdict on the adapter: recorded in the passport, or measured now."""
    s = run.s
    for e in reversed(run.corpus.passport.events("unit_verified")):
        if e.get("unit") == unit and e.get("adapter_fingerprint") == adapter["adapter_sha256"]:
            verdict = e
            break
    else:
        verdict = evaluate.verify(run.corpus_dir, unit, str(needed(run, current)), adapter["adapter"],
                                  threshold=s.threshold,
                                  retention_tolerance=s.tolerance, device=run.device(), clear_of_chance=s.clear_of_chance,
                                  gate_on=s.gate_on, retention_probes=s.retention_probes, min_gain=s.min_gain)
    g, a = verdict["gated"], verdict["gated"]["after"]
    on = "all probes" if g["types"] == "all" else "+".join(g["types"])
    why = "" if verdict["passed"] else ": " + "; ".join(verdict["reasons"])
    # the lower bound with the decimals it takes not to read as the chance it is compared with
    run.log(f"    verify {unit}: {'PASS' if verdict['passed'] else 'FAIL'} {on} {a['acc']:.0%} (95% CI "
            f"{pct(a['lo'], a['chance'])}-{a['hi']:.0%}, chance {a['chance']:.0%}, before {g['before']['acc']:.0%}; "
            f"all probes {verdict['after']['acc']:.0%}){why}")
    return verdict


def merge(run, current, merged_dir, adapter):
    """current + the adapter, as a plain checkpoint in merged_dir (recorded in the passport)."""
    if run.finished(merged_dir, missing_ok=True):  # done, or done and pruned since
        return merged_dir
    # as lora.py --out writes it, from the adapter file's header (the passport's event lacks its
    # base_fingerprint, step and val_loss)
    file, meta = lora.merge_files(needed(run, current), adapter["adapter"], merged_dir)
    run.corpus.passport.append("model_trained", **lora.merged_event(meta, merged_dir, file, current, adapter["adapter"]))
    return merged_dir


# ----------------------------------------------------------------------------- 4 finetune

def stage_finetune(run):
    s, c = run.s, run.corpus
    verified = c.verified()
    if not verified:
        run.log("    no verified unit: nothing to fine-tune on")
        return False
    tokens = s.ft_epochs * sum(c.units[u]["tokens"] for u in verified) / (1 - s.ft_primitive_share)
    steps = run.steps(tokens)
    # in curriculum order the whole budget is one curriculum (each level once, for all its epochs), not
    # one epoch's curriculum over and over; shuffled, an epoch's rows are reshuffled each pass either way
    budget = steps * run.tokens_per_step() if s.ft_order == "curriculum" else None
    run.train(run.out / "finetune", mode="finetune", init=str(run.out / "base"), units=",".join(verified),
              primitive_share=s.ft_primitive_share, max_steps=steps, token_budget=budget, lr=s.ft_lr,
              schedule=s.schedule, order=s.ft_order, meta={"units": verified})
    return True


# ----------------------------------------------------------------------------- 5 scratch

def stage_scratch(run, grow_flops):
    """The scratch model and its control: the verified units + primitive share from random init, with the
    compute the grown model cost (the base and every adapter); the same rows, budget and seed, in
    curriculum order (rehearsing earlier levels) or shuffled. Returns the learning-curve points."""
    s, c = run.s, run.corpus
    verified = c.verified()
    if not verified:
        run.log("    no verified unit: nothing to pretrain on")
        return None
    levels = verified_levels(c)
    note = scratch_note(run, levels)
    if note:
        run.log(f"    {note}")
    base = run.finished(run.out / "base")
    config = run.model_config()
    budget = s.compute * (base["flops"] + grow_flops)
    tokens = budget / flops_per_token(GPT(config), "pretrain")
    steps = run.steps(tokens)
    snapshots = snapshot_steps(curve_fractions(s.curve), steps)
    share = "" if s.compute == 1 else f"{s.compute:g} x "
    run.log(f"    {budget:.3g} FLOPs ({share}the base {base['flops']:.3g} + the adapters {grow_flops:.3g}): "
            f"{steps} steps, {steps * run.tokens_per_step():,} tokens")
    points = []
    replay = s.replay if len(levels) > 1 else 0.0  # one level has no earlier level to rehearse
    for order in scratch_orders(run, levels):
        d = run.out / f"scratch-{order}"
        run.log(f"    scratch ({order})")
        run.train(d, mode="pretrain", units=",".join(verified), order=order, primitive_share=s.primitive_share,
                  replay=replay, token_budget=steps * run.tokens_per_step(), max_steps=steps, lr=s.scratch_lr,
                  schedule=s.schedule, snapshot_steps=snapshots, meta={"units": verified}, preset=run.preset,
                  vocab_size=config.vocab_size, n_layer=config.n_layer, n_head=config.n_head,
                  n_embd=config.n_embd, block_size=config.block_size)
        points += [(f"scratch-{order}", k, None, None, str(d / "snapshots" / f"step-{k:06d}")) for k in snapshots]
        points.append((f"scratch-{order}", steps, None, None, str(d)))
    return points


def verified_levels(corpus):
    """The curriculum levels of the corpus's verified units, in order."""
    return sorted({corpus.units[u]["level"] for u in corpus.verified()})


def scratch_orders(run, levels):
    """The scratch runs' orders: curriculum and shuffled; shuffled alone where the verified units lie on one
    level, whose rows are served in random order either way (and which has no earlier level to rehearse),
    so that a curriculum run would be the shuffled control again and its difference training noise, not
    order. A curriculum run already begun there (by a version that trained one) is kept: it was paid for.
    levels: the verified units' (verified_levels)."""
    if len(levels) > 1 or (run.out / "scratch-curriculum").exists():
        return ("curriculum", "shuffled")
    return ("shuffled",)


def scratch_note(run, levels):
    """What the reports say of the scratch runs where the verified units lie on one level (levels: theirs,
    verified_levels); else None."""
    if len(levels) != 1:
        return None
    if "curriculum" in scratch_orders(run, levels):
        return (f"The verified units all lie on level {levels[0]}, which has no order to test: scratch-curriculum "
                "(begun by a version of ladder.py that trained one there) reads the shuffled run's rows in another "
                "random order, so their difference is training noise, not curriculum order.")
    return (f"No scratch run in curriculum order: the verified units all lie on level {levels[0]}, which has no "
            "order to test (its rows would be the shuffled run's, in another random order).")


# ----------------------------------------------------------------------------- 6 compare

def stage_compare(run, steps, have_ft, curve_points):
    specs = {"base": str(run.out / "base")}
    specs.update({name: str(path) for name, path in steps})
    if steps:
        specs["merged"] = str(steps[-1][1])
    if have_ft:
        specs["finetune"] = str(run.out / "finetune")
    for name in dict.fromkeys(p[0] for p in curve_points or []):  # the scratch runs, each named once
        specs[name] = str(run.out / name)
    # the order's control, and the scratch run against the grown model: in curriculum order where there is one
    scratch = "scratch-curriculum" if "scratch-curriculum" in specs else "scratch-shuffled"
    controls = [(a, b) for a, b in (("scratch-curriculum", "scratch-shuffled"), (scratch, "merged"),
                                    ("finetune", "merged"), ("merged", "base")) if a in specs and b in specs]
    curves = evaluate.learning_curves(run.corpus_dir, curve_points, device=run.device()) if curve_points else None
    references = [r for r in ("merged", "finetune") if r in specs] if curves else None
    return evaluate.compare(run.corpus_dir, specs, run.out / "report", retention_steps=["base"] + [n for n, _ in steps],
                            controls=controls or None, samples=run.s.samples, device=run.device(), seed=run.s.seed,
                            curves=curves, curve_references=references, notes=[n for n in [scratch_note(run, verified_levels(run.corpus))] if n])


RECORD_EVERY = 10  # seconds: how often a stage's time so far is written, at its next log line


def run_ladder(run):
    """All six stages; returns the report (report.json's dict) with each stage's seconds, summed over
    every invocation that worked on it (stage_seconds.json in the run directory), so that a resumed
    run states what it cost, not what its last invocation did; compare's are its last run's."""
    t0, file = time.time(), run.out / "stage_seconds.json"
    seconds = run.stage_seconds()

    def stage(i, title, fn, *args):
        t, name, log, last = time.time(), STAGES[i - 1], run.log, [time.time()]
        # compare keeps nothing from an earlier invocation: each scores every model anew, so the report
        # cost its last run, where a training stage's time adds up over the invocations that resumed it
        before = 0.0 if name == "compare" else seconds.get(name, 0.0)

        def record():
            seconds[name] = round(before + time.time() - t, 1)
            atomic_write_text(file, json.dumps(seconds, indent=1) + "\n")

        def logged(message):  # the time so far, with a line now and then: a kill -9 loses only what follows
            log(message)
            if time.time() - last[0] >= RECORD_EVERY:
                last[0] = time.time()
                record()

        run.log = logged
        try:  # the title inside: a Ctrl-C that follows it, however soon, counts for this stage
            run.log(f"[{i}/{len(STAGES)}] {title}")
            return fn(*args)
        finally:  # a stage stopped by an error or Ctrl-C counts the time it ran
            run.log = log
            record()

    try:
        stage(1, "corpus: units, tokenizer, shards", stage_corpus, run)
    except (ValueError, FileNotFoundError):
        # a first corpus refused: no run is left that a retry would continue on a tokenizer of the refused files
        if run.before is not None:
            run.discard()
        raise
    stage(2, "base: pretrain on primitive text", stage_base, run)
    steps, grow_flops = stage(3, "grow: LoRA per unit, verify, merge", stage_grow, run)
    have_ft = stage(4, "finetune: full fine-tune on the verified units", stage_finetune, run)
    points = stage(5, "scratch: random init at the grown model's compute, in curriculum order and shuffled",
                   stage_scratch, run, grow_flops)
    report = stage(6, "compare: every stage on the same probes", stage_compare, run, steps, have_ft, points)
    report["stage_seconds"] = seconds
    # what it trained with, so that report.py seeds can refuse one run given as two seeds, or seeds of other
    # settings; where it ran is left out, as ladder.json's check leaves it out
    report["settings"] = {"preset": run.preset, **{k: v for k, v in dataclasses.asdict(run.s).items() if k != "device"}}
    report["training_flops"] = training_flops(report["models"], grow_flops)
    atomic_write_text(run.out / "report" / "report.json", json.dumps(report, indent=1) + "\n")
    run.log(f"ladder done in {time.time() - t0:.0f}s; its stages over every invocation (compare: the last): "
            + ", ".join(f"{n} {v:.0f}s" for n, v in seconds.items()))
    return report


def training_flops(models, grow_flops):
    """What the ladder's training cost, stage by stage, in FLOPs: the base, every adapter (the rejected
    ones too), the fine-tune's own steps and the scratch runs (report.json's models count from random
    init)."""
    base = models["base"]["flops"]
    out = {"base": base, "adapters": grow_flops}
    if "finetune" in models:
        out["finetune"] = models["finetune"]["flops"] - base
    scratch = [m["flops"] for name, m in models.items() if name.startswith("scratch-")]
    if scratch:
        out["scratch"] = sum(scratch)
    return out


# ----------------------------------------------------------------------------- command line

def summary_lines(report):
    """The report's models as a few lines: accuracy overall and by probe type."""
    types = list(next(iter(report["models"].values()))["summary"]["by_type"])
    if not next(iter(report["models"].values()))["summary"]["overall"]["n"]:
        return [f"no unit passed the gate ({', '.join(report.get('rejected', [])) or 'none'} rejected): no "
                "probes to compare the models on; the report scores the rejected units apart"]
    lines = [f"{'model':<24} {'all':>6}  " + "  ".join(f"{t:>17}" for t in types)]
    for name, m in report["models"].items():
        by = m["summary"]["by_type"]
        lines.append(f"{name:<24} {m['summary']['overall']['acc']:>6.1%}  " +
                     "  ".join(f"{by[t]['acc']:>17.1%}" if t in by else f"{'-':>17}" for t in types))
    return lines


def threads_env():
    """OMP_NUM_THREADS=N when it is set: part of the command that reproduces a run's time."""
    return [f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}"] if os.environ.get("OMP_NUM_THREADS") else []


def write_results(out, argv, device, control, report=None, agg=None, reports=None):
    """report/results.md: this run's section of RESULTS.md (report.render_results)."""
    # quoted as a shell reads them: an --out with a space is one word when the command is run again
    run = {"title": f"`ladder.py {shlex.join(argv)}`".replace("`ladder.py `", "`ladder.py`"),
           "command": shlex.join(threads_env() + ["python", "ladder.py"] + list(argv)),
           # the stages' time summed over every invocation that ran them: a resumed run's whole cost
           "seconds": sum(sum(r["stage_seconds"].values()) for r in reports or [report]),
           "machine": machine.with_ceiling(device), "stage_seconds": (report or {}).get("stage_seconds", {}), "control": control}
    if agg is not None:
        run["stage_seconds"] = {}
    flops = [r.get("training_flops", {}) for r in reports or [report]]
    # every stage any seed ran (a seed whose gate rejected every unit has no fine-tune or scratch runs)
    run["training_flops"] = {k: sum(f.get(k, 0) for f in flops) for k in dict.fromkeys(k for f in flops for k in f)}
    run["seeds"] = len(flops)
    text = render_results(run, report=report, agg=agg, reports=reports)
    atomic_write_text(Path(out) / "report" / "results.md", text)


def parser():
    p = argparse.ArgumentParser(description="Run the whole accrete experiment (corpus, base, grow, finetune, "
                                "scratch, compare) on the built-in world or your own units. Resumable.")
    p.add_argument("--preset", default="tiny", choices=list(presets.PRESETS),
                   help="the model and budgets (presets.py; default: %(default)s)")
    p.add_argument("--out", default="runs/ladder", help="run directory (default: %(default)s)")
    p.add_argument("--units", help="a directory of your own unit files instead of the built-in world; with "
                   "knowledge units only, the primitive text, a register and practice are added (practice.py)")
    p.add_argument("--primitive", help="with --units: your own primitive units (a directory) instead of the added ones")
    p.add_argument("--seeds", type=int, default=1, help="run the ladder with N paired seeds and report every "
                   "comparison over them (default: %(default)s)")
    p.add_argument("--world-per-seed", action="store_true", help="with --seeds: each seed reads its own built-in "
                   "world (--world-seed plus k for the k-th seed), so the interval over seeds covers the draw of "
                   "creatures, kinds and rules as well as training")
    return add_options(p, Settings, defaults=False, shown=("tiny", dataclasses.asdict(settings_for("tiny"))))


def seed_runs(out, seed, seeds):
    """(seed, run directory) of each of seeds paired runs from seed on: out itself for one seed, else
    out/seed-N, named by the seed it trains with."""
    return [(seed, Path(out))] if seeds == 1 else [(seed + k, Path(out) / f"seed-{seed + k}") for k in range(seeds)]


def check_out_kind(out, seeds):
    """Refuse an --out that holds the other kind of run: one run (its ladder.json at the top) where
    --seeds N would write seed-N runs beside it, or runs across seeds where one run would be written
    over them: each kind writes its report to out/report, so each would replace the other's."""
    out = Path(out)
    if seeds > 1 and (out / "ladder.json").is_file():
        raise LadderError(f"--out {out}: holds one run (its ladder.json), whose report --seeds {seeds} would "
                          "replace; use another --out")
    across = sorted(p.name for p in out.glob("seed-*") if (p / "ladder.json").is_file())
    if seeds == 1 and across:
        raise LadderError(f"--out {out}: holds runs across seeds ({', '.join(across)}), whose report one run would "
                          "replace; use another --out, or continue them with --seeds")


# what marks a directory as another command's output, checkpoint files first: a Hugging Face model's
# directory holds a tokenizer.json too
OWNED = (("checkpoint", ("model.safetensors", "adapter.safetensors", "train_state.safetensors"),
          "one training's files"),
         ("corpus", ("passport.jsonl", "tokenizer.json"), "the corpus"))


def check_out_place(out, units_dir=None, primitive_dir=None):
    """Refuse an --out that is, or is inside, a corpus, a checkpoint directory, or a directory of units the
    run reads (--units, --primitive, the built-in worlds): the run's files would be mixed into it. A
    ladder's own earlier --out (its ladder.json) is fine: continuing it is the point."""
    here = Path(out).resolve()  # however out is spelled (relative, .., a link)
    for k, d in enumerate((here, *here.parents)):
        for kind, names, holds in OWNED:
            found = next((n for n in names if (d / n).exists()), None)
            if found:
                where = f"is a {kind} directory" if k == 0 else f"is inside the {kind} directory {d}"
                raise LadderError(f"--out {out}: {where} (its {found}), which holds {holds} and nothing else; write "
                                  "to another directory")
    read = (("the --units directory", units_dir, "whose unit files the run reads"),
            ("the --primitive directory", primitive_dir, "whose unit files the run reads"),
            ("the built-in worlds' directory", WORLDS, "where each world is remade whole when prepare.py changes"))
    for name, d, why in read:
        if d and (same_file(out, d) or in_directory(out, d)):
            where = f"is {name}" if same_file(out, d) else f"is inside {name} {d}"
            raise LadderError(f"--out {out}: {where}, {why}; write to another directory")


def _stop(signum, frame):
    raise KeyboardInterrupt  # a SIGTERM (kill, a job scheduler) ends a ladder as Ctrl-C does: its stage's time is kept


def main(argv=None):
    signal.signal(signal.SIGTERM, _stop)
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(Settings)}
    try:
        s = settings_for(args.preset, **overrides)
        check_seeds(s.seed, args.seeds)
        control = parse_control(s.control)
        if args.primitive and not args.units:
            raise LadderError("--primitive goes with --units (the built-in world has its own primitive text)")
        if args.world_per_seed and (args.units or args.seeds < 2):
            raise LadderError("--world-per-seed goes with --seeds N (N >= 2) on the built-in world")
        check_out_place(args.out, args.units, args.primitive)  # before a world is made for the checks below
        check_given({k for k, v in overrides.items() if v is not None}, s, args.preset, args.units, args.primitive)
        out, reports = Path(args.out), []
        check_out_kind(out, args.seeds)

        def seed_run(seed, run_dir, save=True):
            world_seed = s.world_seed + (seed - s.seed if args.world_per_seed else 0)
            return Run(run_dir, args.preset, dataclasses.replace(s, seed=seed, world_seed=world_seed), args.units,
                       args.primitive, save=save)
        # every seed's directory before any is written, and before check_settings makes a built-in world
        # (minutes for a large one) that a run started with other settings would refuse
        for seed, run_dir in seed_runs(out, s.seed, args.seeds):
            seed_run(seed, run_dir, save=False)
        begun = all((d / "corpus" / "passport.jsonl").is_file() for _, d in seed_runs(out, s.seed, args.seeds))
        check_settings(s, args.preset, args.units, args.primitive, begun=begun)
        if args.seeds > 1:  # and where the page across them goes, before any seed trains
            check_writable(out / "report")
        for seed, run_dir in seed_runs(out, s.seed, args.seeds):
            if args.seeds > 1:
                print(f"=== seed {seed} -> {run_dir}")
            reports.append(run_ladder(seed_run(seed, run_dir)))
            print("\n".join(summary_lines(reports[-1]) + control_lines(control, reports[-1:])))
        device = str(resolve_device(s.device))
        if args.seeds > 1:
            agg = aggregate_seeds(reports, out / "report", worlds=args.world_per_seed)
            print("\n".join(control_lines(control, reports, agg)))
            write_results(out, argv, device, control, agg=agg, reports=reports)
        else:
            write_results(out, argv, device, control, report=reports[0])
        print(f"report: {out / 'report' / 'report.md'}; results: {out / 'report' / 'results.md'}")
    except (ValueError, FileNotFoundError) as e:
        fail(e)
    except KeyboardInterrupt:
        interrupted("run the same command to continue where it stopped")


if __name__ == "__main__":
    main()
