"""
The whole accrete experiment in one command, on the built-in synthetic world (or your own units):

    python ladder.py                      # tiny preset, CPU, minutes; report in runs/ladder/report/
    python ladder.py --preset small       # one GPU: GPT-2-124M-shaped model on a 100M-token world
    python ladder.py --units my_units/    # the same ladder on your own unit files

Stages (each one a call into curriculum.py, train.py and evaluate.py, in-process):
  1 corpus    make the world if missing, create the corpus, add its units
  2 base      pretrain the model from scratch on the primitive units only
  3 grow      per knowledge unit, in curriculum order: train a LoRA on the current model (rehearsing
              the units verified before it), verify it (the gate), merge it if it passes, so the next
              adapter trains on top
  4 finetune  full fine-tune of the base on the union of verified units (+ primitive replay)
  5 scratch   pretrain the same architecture from random init on the verified units + primitive
              share, in curriculum order; and the control: the same tokens shuffled
  6 compare   evaluate.compare over every stage, with the retention matrix and the controls

Resumable: a ladder stopped at any point continues from the last finished stage (read from the
passport and the files it names; trainings resume from their own checkpoints).
"""

import argparse
import dataclasses
import json
import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import curriculum
import evaluate
import lora
from common import atomic_write_text, fail, sha256_file
from model import load_checkpoint, save_checkpoint
from train import TrainConfig, train

ROOT = Path(__file__).resolve().parent


@dataclass
class Settings:
    """Everything a preset sets; every field is also a command-line option."""
    # model (a model.py preset plus overrides) and tokenizer
    model: str = "tiny"
    n_layer: int = None
    n_head: int = None
    n_embd: int = None
    block_size: int = None
    vocab_size: int = 2048  # the corpus's BPE is trained to this size
    # world
    world_size: str = "tiny"  # data/world/prepare.py --size
    world_tokens: int = None  # or --target-tokens
    world_seed: int = 0
    # training, shared
    batch_size: int = 16
    grad_accum: int = 1
    seed: int = 0
    device: str = "auto"
    compile: bool = False
    # stage 2: base
    base_steps: int = 1000
    base_lr: float = 3e-3
    # stage 3: grow (LoRA per unit, verify, merge)
    lora_steps: int = 200
    lora_lr: float = 2e-2  # several times full fine-tuning's: only the rank-r path trains
    lora_r: int = 16
    lora_alpha: float = 32.0
    lora_primitive_share: float = 0.4  # keeps the base's question frames alive while the unit is learned
    lora_replay: float = 0.3  # share of the knowledge rows drawn from the units verified before (rehearsal)
    threshold: float = 0.35  # the gate: accuracy after the adapter (chance is 0.25 on the default world)
    tolerance: float = 0.15  # the gate: the most an earlier unit may lose (48 probes: +-14 points is noise)
    clear_of_chance: bool = True  # the gate: the 95% interval's lower bound must be above chance
    gate_on: str = "recall"  # the gate reads this probe type (what an adapter is taught); "all": every probe
    # stage 4: finetune
    ft_steps: int = 300
    ft_lr: float = 1e-3
    ft_primitive_share: float = 0.1
    # stage 5: scratch
    scratch_steps: int = 400
    scratch_lr: float = 3e-3
    primitive_share: float = 0.1
    replay: float = 0.0
    # stage 6: compare
    samples: int = 1  # generations per model for a few fixed prompts, in the report


PRESETS = {
    # seconds: the end-to-end test (user units, a micro model)
    "micro": dict(model="micro", vocab_size=512, batch_size=8, base_steps=30, base_lr=3e-3, lora_steps=20,
                  lora_r=4, lora_alpha=8.0, lora_lr=3e-3, ft_steps=20, scratch_steps=30,
                  threshold=0.0, tolerance=1.0, clear_of_chance=False),  # an open gate: plumbing, not science
    # minutes on 2 CPU cores: the default
    "tiny": dict(),
    # one GPU: the GPT-2-124M shape on a 100M-token world
    "small": dict(model="small", vocab_size=8192, world_tokens=100_000_000, batch_size=32, grad_accum=1,
                  base_steps=5000, base_lr=6e-4, lora_steps=1000, lora_lr=2e-3, lora_r=32, lora_alpha=64.0,
                  ft_steps=5000, ft_lr=2e-4, scratch_steps=20000, scratch_lr=6e-4, compile=True),
}

STAGES = ("corpus", "base", "grow", "finetune", "scratch", "compare")


class LadderError(ValueError):
    """A ladder that cannot run or continue as asked."""


def settings_for(preset, **overrides):
    if preset not in PRESETS:
        raise LadderError(f"unknown preset {preset!r}: use {', '.join(PRESETS)}")
    return dataclasses.replace(Settings(**PRESETS[preset]), **{k: v for k, v in overrides.items() if v is not None})


# ----------------------------------------------------------------------------- bookkeeping

class Ladder:
    """One run of the ladder in one directory: its settings, its corpus, and what is finished."""

    def __init__(self, out, s, units_dir=None, log=print):
        self.out, self.s, self.log = Path(out), s, log
        self.units_dir = Path(units_dir) if units_dir else None
        self.state_file = self.out / "ladder.json"
        settings = dataclasses.asdict(s)
        if self.state_file.is_file():
            saved = json.loads(self.state_file.read_text())
            if saved["settings"] != settings or saved.get("units_dir") != (str(units_dir) if units_dir else None):
                changed = sorted(k for k in settings if saved["settings"].get(k) != settings[k])
                raise LadderError(f"{self.state_file}: this run was started with other settings ({changed or 'units'}); "
                                  "continue it with the same options, or use another --out")
        else:
            self.out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.state_file, json.dumps({"settings": settings, "units_dir":
                                                           str(units_dir) if units_dir else None}, indent=1))
        self.corpus_dir = self.out / "corpus"

    @property
    def corpus(self):
        return curriculum.Corpus(self.corpus_dir)

    def finished(self, out_dir, event="model_trained"):
        """The passport's record of a training into out_dir, if the file it names is still intact."""
        for e in reversed(self.corpus.passport.events(event)):
            if e.get("out_dir") == str(out_dir):
                f, sha = (e["adapter"], e["adapter_sha256"]) if event == "adapter_trained" else \
                    (e["checkpoint"], e["checkpoint_sha256"])
                return e if Path(f).is_file() and sha256_file(f) == sha else None
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
                          eval_iters=5, **kw)
        train(cfg, log=lambda m: self.log("    " + m))
        return self.finished(out_dir, event)

    # ------------------------------------------------------------------------- the stages

    def stage_corpus(self):
        if self.units_dir:
            files = sorted(self.units_dir.glob("*.jsonl"))
            if not files:
                raise LadderError(f"{self.units_dir}: no unit files (*.jsonl)")
        else:
            world = ROOT / "data" / "world" / "units" / (self.s.world_size if self.s.world_tokens is None
                                                         else f"tokens-{self.s.world_tokens}")
            files = sorted(world.glob("*.jsonl"))
            if not files:
                sys.path.insert(0, str(ROOT / "data" / "world"))
                import prepare
                self.log(f"    making the default world in {world}")
                files = prepare.generate(world, seed=self.s.world_seed, size=self.s.world_size,
                                         target_tokens=self.s.world_tokens)
        if not (self.corpus_dir / "passport.jsonl").is_file():
            curriculum.init(self.corpus_dir, files, vocab_size=self.s.vocab_size)
        curriculum.add(self.corpus_dir, files, log=lambda m: None)  # idempotent: finishes a stopped add
        c = self.corpus
        know = [u for u in c.order() if u in c.knowledge_units()]
        self.log(f"    {len(c.units)} units ({len(know)} knowledge), vocab {c.vocab_size}")

    def model_kw(self):
        s = self.s
        return dict(preset=s.model, vocab_size=self.corpus.vocab_size, n_layer=s.n_layer, n_head=s.n_head,
                    n_embd=s.n_embd, block_size=s.block_size)

    def stage_base(self):
        s = self.s
        self.train(self.out / "base", mode="pretrain", units="primitive", max_steps=s.base_steps, lr=s.base_lr,
                   warmup=max(1, s.base_steps // 20), meta={"units": []}, **self.model_kw())

    def stage_grow(self):
        """Sequential accumulation: each verified adapter is merged before the next one trains."""
        s, c = self.s, self.corpus
        current = self.out / "base"
        know = [u for u in c.order() if u in c.knowledge_units()]
        steps, passed = [], []
        for i, unit in enumerate(know, 1):
            d = self.out / "grow" / f"{i:02d}-{unit}"
            self.log(f"  grow {i}/{len(know)}: {unit} on {current.name}")
            ad = self.train(d, event="adapter_trained", mode="lora", init=str(current), units=unit,
                            primitive_share=s.lora_primitive_share, replay=s.lora_replay if passed else 0.0,
                            replay_units=",".join(passed) or None, max_steps=s.lora_steps, lr=s.lora_lr,
                            warmup=max(1, s.lora_steps // 20), weight_decay=0.0, lora_r=s.lora_r,
                            lora_alpha=s.lora_alpha, meta={"units": [unit]})
            verdict = self._verdict(unit, ad["adapter_sha256"])
            if verdict is None:
                verdict = evaluate.verify(self.corpus_dir, unit, str(current), ad["adapter"], threshold=s.threshold,
                                          retention_tolerance=s.tolerance, device=self._device(),
                                          clear_of_chance=s.clear_of_chance, gate_on=s.gate_on)
            g = verdict.get("gated") or {"types": "all", "before": verdict["before"], "after": verdict["after"]}
            a, on = g["after"], "all probes" if g["types"] == "all" else "+".join(g["types"])
            self.log(f"    verify {unit}: {'PASS' if verdict['passed'] else 'FAIL'} {on} {a['acc']:.0%} "
                     f"(95% CI {a['lo']:.0%}-{a['hi']:.0%}, chance {a['chance']:.0%}, before "
                     f"{g['before']['acc']:.0%}; all probes {verdict['after']['acc']:.0%})" + ("" if verdict["passed"] else f": {'; '.join(verdict['reasons'])}"))
            if verdict["passed"]:
                current = self._merge(current, d, unit, ad)
                steps.append((f"step{i}-{unit}", current))
                passed.append(unit)
        return steps

    def _verdict(self, unit, adapter_sha):
        for e in reversed(self.corpus.passport.events("unit_verified")):
            if e.get("unit") == unit and e.get("adapter_fingerprint") == adapter_sha:
                return e
        return None

    def _merge(self, current, d, unit, ad):
        merged_dir = d / "merged"
        if not self.finished(merged_dir):
            model, meta = load_checkpoint(current)
            lora.load_adapter(model, ad["adapter"], meta.get("tokenizer_hash"))
            units = list(meta.get("units") or []) + [unit]
            file = save_checkpoint(lora.merge(model), merged_dir,
                                   dict(meta, mode="merged", units=units, tokens=meta.get("tokens", 0) + ad["tokens"],
                                        seconds=meta.get("seconds", 0) + ad["seconds"]))
            self.corpus.passport.append("model_trained", mode="merged", out_dir=str(merged_dir), checkpoint=str(file),
                                        checkpoint_sha256=sha256_file(file), units=units, init=str(current),
                                        adapter=ad["adapter"], tokens=ad["tokens"], seconds=ad["seconds"])
        return merged_dir

    def stage_finetune(self):
        s = self.s
        verified = self.corpus.verified()
        if not verified:
            self.log("    no verified unit: nothing to fine-tune on")
            return False
        self.train(self.out / "finetune", mode="finetune", init=str(self.out / "base"), units=",".join(verified),
                   primitive_share=s.ft_primitive_share, max_steps=s.ft_steps, lr=s.ft_lr,
                   warmup=max(1, s.ft_steps // 20), meta={"units": verified})
        return True

    def stage_scratch(self):
        """The scratch model and its control: the same selection, budget and seed; only the order differs."""
        s = self.s
        verified = self.corpus.verified()
        if not verified:
            self.log("    no verified unit: nothing to pretrain on")
            return False
        budget = s.scratch_steps * s.batch_size * s.grad_accum * self.corpus_block()
        for order in ("curriculum", "shuffled"):
            self.log(f"    scratch ({order})")
            self.train(self.out / f"scratch-{order}", mode="pretrain", units=",".join(verified), order=order,
                       primitive_share=s.primitive_share, replay=s.replay, token_budget=budget,
                       max_steps=s.scratch_steps, lr=s.scratch_lr, warmup=max(1, s.scratch_steps // 20),
                       meta={"units": verified}, **self.model_kw())
        return True

    def corpus_block(self):
        model, _ = load_checkpoint(self.out / "base")
        return model.config.block_size

    def stage_compare(self, steps, have_ft, have_scratch):
        specs = {"base": str(self.out / "base")}
        specs.update({name: str(path) for name, path in steps})
        if steps:
            specs["merged"] = str(steps[-1][1])
        if have_ft:
            specs["finetune"] = str(self.out / "finetune")
        if have_scratch:
            specs["scratch-curriculum"] = str(self.out / "scratch-curriculum")
            specs["scratch-shuffled"] = str(self.out / "scratch-shuffled")
        controls = [(a, b) for a, b in (("scratch-curriculum", "scratch-shuffled"), ("scratch-curriculum", "merged"),
                                        ("finetune", "merged"), ("merged", "base")) if a in specs and b in specs]
        retention = ["base"] + [name for name, _ in steps]
        return evaluate.compare(self.corpus_dir, specs, self.out / "report", retention_steps=retention,
                                controls=controls or None, samples=self.s.samples, device=self._device())

    def _device(self):
        import torch
        return ("cuda" if torch.cuda.is_available() else "cpu") if self.s.device == "auto" else self.s.device

    def run(self):
        t0 = time.time()
        marks = []

        def stage(i, name, fn, *args):
            self.log(f"[{i}/{len(STAGES)}] {name}")
            t = time.time()
            out = fn(*args)
            marks.append((STAGES[i - 1], time.time() - t))
            return out

        stage(1, "corpus: units, tokenizer, shards", self.stage_corpus)
        stage(2, "base: pretrain on primitive text", self.stage_base)
        steps = stage(3, "grow: LoRA per unit, verify, merge", self.stage_grow)
        have_ft = stage(4, "finetune: full fine-tune on the verified units", self.stage_finetune)
        have_scratch = stage(5, "scratch: pretrain from random init, curriculum vs shuffled", self.stage_scratch)
        report = stage(6, "compare: every stage on the same probes", self.stage_compare, steps, have_ft, have_scratch)
        # this invocation's seconds per stage (a resumed run's finished stages take ~0 s), kept in report.json
        report["stage_seconds"] = {name: round(sec, 1) for name, sec in marks}
        atomic_write_text(self.out / "report" / "report.json", json.dumps(report, indent=1) + "\n")
        self.log(f"ladder done in {time.time() - t0:.0f}s (" +
                 ", ".join(f"{n} {sec:.0f}s" for n, sec in report["stage_seconds"].items()) + ")")
        return report


# ----------------------------------------------------------------------------- summaries

def summary_lines(report):
    lines = [f"{'model':<24} {'accuracy':>9}  {'95% CI':>13}  {'chance':>6}  {'by level'}"]
    for name, m in report["models"].items():
        o = m["summary"]["overall"]
        by_level = "  ".join(f"L{lv} {v['acc']:.0%}" for lv, v in sorted(m["summary"]["by_level"].items()))
        lines.append(f"{name:<24} {o['acc']:>9.1%}  {o['lo']:>5.1%}-{o['hi']:<6.1%}  {o['chance']:>6.0%}  {by_level}")
    return lines


def aggregate(reports, out):
    """Mean and spread across seeds of each model's accuracy (overall, by level, by type)."""
    names = [n for n in reports[0]["models"] if all(n in r["models"] for r in reports)]
    agg = {}
    for n in names:
        rows = {"overall": [r["models"][n]["summary"]["overall"]["acc"] for r in reports]}
        for key in ("by_level", "by_type"):
            for g in reports[0]["models"][n]["summary"][key]:
                rows[f"{key[3:]} {g}"] = [r["models"][n]["summary"][key].get(g, {}).get("acc", math.nan)
                                          for r in reports]
        agg[n] = {k: {"mean": statistics.fmean(v), "sd": statistics.stdev(v) if len(v) > 1 else 0.0, "values": v}
                  for k, v in rows.items()}
    md = [f"# accrete ladder: {len(reports)} seeds", "",
          "Accuracy on the unit probes, mean ± standard deviation across seeds.", "",
          "| model | " + " | ".join(agg[names[0]]) + " |", "|---" * (len(agg[names[0]]) + 1) + "|"]
    for n in names:
        md.append(f"| {n} | " + " | ".join(f"{v['mean']:.1%} ± {v['sd']:.1%}" for v in agg[n].values()) + " |")
    atomic_write_text(out / "report.md", "\n".join(md) + "\n")
    atomic_write_text(out / "report.json", json.dumps({"seeds": len(reports), "models": agg}, indent=1) + "\n")
    return md


def main(argv=None):
    p = argparse.ArgumentParser(description="Run the whole accrete experiment (corpus, base, grow, finetune, "
                                "scratch, compare) on the default world or your own units. Resumable.")
    p.add_argument("--preset", default="tiny", choices=list(PRESETS))
    p.add_argument("--out", default="runs/ladder", help="run directory (default runs/ladder)")
    p.add_argument("--units", help="a directory of your own unit files instead of the default world")
    p.add_argument("--seeds", type=int, default=1, help="repeat the ladder with N seeds; report mean and spread")
    for f in dataclasses.fields(Settings):
        flag = "--" + f.name.replace("_", "-")
        if f.type is bool:
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
        else:
            p.add_argument(flag, type=f.type, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(Settings)}
    try:
        s = settings_for(args.preset, **overrides)
        out = Path(args.out)
        if args.seeds < 1:
            raise LadderError("--seeds must be at least 1")
        reports = []
        for k in range(args.seeds):
            run_dir = out if args.seeds == 1 else out / f"seed-{k}"
            seeded = dataclasses.replace(s, seed=s.seed + k)
            if args.seeds > 1:
                print(f"=== seed {seeded.seed} -> {run_dir}")
            reports.append(Ladder(run_dir, seeded, args.units).run())
            print("\n".join(summary_lines(reports[-1])))
        print(f"report: {out / 'report' / 'report.md' if args.seeds == 1 else out / 'seed-*' / 'report'}")
        if args.seeds > 1:
            print("\n".join(aggregate(reports, out)))
            print(f"across seeds: {out / 'report.md'}")
    except (ValueError, FileNotFoundError) as e:
        fail(e)


if __name__ == "__main__":
    main()
