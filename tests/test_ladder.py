"""ladder.py end to end on a micro preset with user units: every stage's files, passport events and
report rows; resume after a stop between stages and inside a training."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import curriculum
import ladder

ROOT = Path(__file__).resolve().parent.parent
COLORS = ["red", "blue", "green", "white"]


def write_units(d):
    """One primitive unit and two knowledge units (the second requires the first)."""
    d.mkdir(parents=True, exist_ok=True)

    def unit(uid, kind, level, docs, probes=(), requires=()):
        header = {"unit": uid, "kind": kind, "level": level, "title": uid, "concepts": [], "requires": list(requires),
                  "source": "test", "license": "CC0-1.0"}
        lines = [header] + [{"text": t} for t in docs] + list(probes)
        (d / f"{uid}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))

    prim = [f"The {a} is {c}. Q: What color is the {a}? A: The {a} is {c}." for a, c in
            [("apple", "red"), ("sky", "blue"), ("grass", "green"), ("snow", "white")]] * 30
    unit("prim-00", "primitive", 0, prim)
    for i, names in enumerate([["blick", "dax", "wug", "fep"], ["zorp", "mell", "tove", "gimble"]]):
        facts = list(zip(names, COLORS[i:] + COLORS[:i]))
        docs = [f"Everyone knows the {n} has a {c} coat. The {n} has a {c} coat." for n, c in facts] * 8
        probes = [{"probe": f"Q: What color is the {n}? A: The {n} is", "answer": c, "choices": COLORS,
                   "type": "recall"} for n, c in facts]
        unit(f"facts-{i:02d}", "knowledge", i, docs, probes, requires=[f"facts-{i - 1:02d}"] if i else [])
    return d


def run_ladder(out, units, *extra, env=None, check=True):
    return subprocess.run([sys.executable, str(ROOT / "ladder.py"), "--preset", "micro", "--out", str(out),
                           "--units", str(units), *extra], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **(env or {})}, check=check)


def kill_when(path, args, timeout=120):
    """Start a command, SIGKILL it as soon as `path` exists (a training's first resume state)."""
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.time() + timeout
    while not path.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    return proc.wait()


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A micro ladder, killed inside the base pretraining (once its first resume state is written)
    and then run again."""
    tmp = tmp_path_factory.mktemp("ladder")
    units = write_units(tmp / "units")
    state = tmp / "run" / "base" / "train_state.safetensors"
    code = kill_when(state, [sys.executable, str(ROOT / "ladder.py"), "--preset", "micro", "--out", str(tmp / "run"),
                             "--units", str(units)])
    assert code == -9 and state.is_file()
    assert not (tmp / "run" / "base" / "model.safetensors").exists()
    again = run_ladder(tmp / "run", units)
    return tmp, again.stdout


def test_every_stage_produced_its_files(finished):
    tmp, stdout = finished
    run = tmp / "run"
    assert (run / "base" / "model.safetensors").is_file()
    for i, unit in enumerate(["facts-00", "facts-01"], 1):
        assert (run / "grow" / f"{i:02d}-{unit}" / "adapter.safetensors").is_file()
        assert (run / "grow" / f"{i:02d}-{unit}" / "merged" / "model.safetensors").is_file()
    for name in ("finetune", "scratch-curriculum", "scratch-shuffled"):
        assert (run / name / "model.safetensors").is_file()
    assert (run / "report" / "report.md").is_file()
    for stage in ("[1/6] corpus", "[3/6] grow", "[6/6] compare", "report: "):
        assert stage in stdout


def test_the_passport_records_every_training_and_verification(finished):
    tmp, _ = finished
    corpus = curriculum.Corpus(tmp / "run" / "corpus")
    corpus.passport.check()
    trained = corpus.passport.events("model_trained")
    modes = sorted(e["mode"] for e in trained)
    # base, 2 merges, finetune, 2 scratch: each exactly once although the base training was killed
    assert modes == ["finetune", "merged", "merged", "pretrain", "pretrain", "pretrain"]
    assert [e["unit"] for e in corpus.passport.events("unit_verified")] == ["facts-00", "facts-01"]
    adapters = corpus.passport.events("adapter_trained")
    assert len(adapters) == 2
    # the second adapter rehearses the unit verified before it; the first has nothing to rehearse
    assert [a["selection"]["replay_units"] for a in adapters] == [[], ["facts-00"]]
    assert adapters[1]["selection"]["replay"] == ladder.Settings().lora_replay > 0
    assert corpus.verified() == ["facts-00", "facts-01"]  # the micro preset's gate is open (threshold 0)


def test_report_has_a_row_per_stage_and_the_retention_matrix(finished):
    tmp, _ = finished
    report = json.loads((tmp / "run" / "report" / "report.json").read_text())
    assert list(report["stage_seconds"]) == list(ladder.STAGES)  # what each stage took, in order
    assert report["stage_seconds"]["base"] > 0 and all(v >= 0 for v in report["stage_seconds"].values())
    assert list(report["models"]) == ["base", "step1-facts-00", "step2-facts-01", "merged", "finetune",
                                      "scratch-curriculum", "scratch-shuffled"]
    assert report["retention"]["steps"] == ["base", "step1-facts-00", "step2-facts-01"]
    assert len(report["retention"]["acc"]) == 3 and len(report["retention"]["acc"][0]) == 2
    assert any(c["a"] == "scratch-curriculum" and c["b"] == "scratch-shuffled" for c in report["comparisons"])
    md = (tmp / "run" / "report" / "report.md").read_text()
    for name in report["models"]:
        assert name in md


def test_a_finished_ladder_reruns_nothing_and_gives_the_same_report(finished):
    tmp, _ = finished
    before = json.loads((tmp / "run" / "report" / "report.json").read_text())
    n_events = len(curriculum.Corpus(tmp / "run" / "corpus").passport.events())
    out = run_ladder(tmp / "run", tmp / "units").stdout
    assert "done earlier" in out
    after = json.loads((tmp / "run" / "report" / "report.json").read_text())
    for name in before["models"]:
        assert after["models"][name]["summary"] == before["models"][name]["summary"]
    assert len(curriculum.Corpus(tmp / "run" / "corpus").passport.events()) == n_events


def test_a_ladder_stopped_between_stages_matches_an_uninterrupted_one(finished, tmp_path):
    tmp, _ = finished
    s = ladder.settings_for("micro")
    lad = ladder.Ladder(tmp_path / "run", s, tmp / "units", log=lambda m: None)
    lad.stage_corpus()
    lad.stage_base()  # "stopped" here: a new Ladder object continues from the passport
    report = ladder.Ladder(tmp_path / "run", s, tmp / "units", log=lambda m: None).run()
    straight = json.loads((tmp / "run" / "report" / "report.json").read_text())
    for name in straight["models"]:
        assert report["models"][name]["summary"] == straight["models"][name]["summary"]


def test_other_settings_in_the_same_run_directory_are_refused(finished):
    tmp, _ = finished
    r = run_ladder(tmp / "run", tmp / "units", "--lora-steps", "7", check=False)
    assert r.returncode == 2 and "other settings" in r.stderr and "lora_steps" in r.stderr
