"""ladder.py end to end on a micro preset with user units: every stage's files, passport events and
report rows; resume after a stop between stages and inside a training."""
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import curriculum
import ladder
from in_process import run_main
from model import read_tensors
from stats import points_range
from test_train import killed_at
from unit_files import snapshot

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


@pytest.fixture
def ladder_cli(capsys):
    """run_ladder in this process (no interpreter to start): its exit status and what it printed."""
    def run(out, units, *extra, check=True):
        r = run_main(ladder.main, ["--preset", "micro", "--out", out, "--units", units, *extra], capsys)
        assert r.returncode == 0 or not check, r.stderr
        return r
    return run


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A micro ladder, killed inside the base pretraining (after its first resume state, halfway to its
    second) and then run again."""
    tmp = tmp_path_factory.mktemp("ladder")
    units = write_units(tmp / "units")
    state = tmp / "run" / "base" / "train_state.safetensors"
    # the kill comes at a step of the first training, whatever the machine's speed: no race with a poll
    killed = killed_at("ladder.py", ["--preset", "micro", "--out", tmp / "run", "--units", units], "train.train_step",
                       "step == cfg.ckpt_interval + cfg.ckpt_interval // 2")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    saved = read_tensors(state)[1]
    assert saved["step"] == saved["config"]["ckpt_interval"] < saved["config"]["max_steps"]
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
    trained = [e for e in corpus.passport.events("model_trained") if not e.get("snapshot")]
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
    # the curriculum run rehearses level 0 in level 1, and the shuffled control reads the same rows
    scratch = [e for e in trained if e["mode"] == "pretrain" and e["selection"]["units"] != []]
    assert [e["selection"]["replay"] for e in scratch] == [ladder.Settings().replay] * 2


def test_a_unit_the_ladder_made_otherwise_than_its_corpus_holds_is_named_as_another_version_s(finished, tmp_path,
                                                                                             monkeypatch):
    """A support unit (or the built-in world's) made by another version of its generator: add would call it a
    new unit under a taken id."""
    tmp, _ = finished
    shutil.copytree(tmp / "run", tmp_path / "run")
    run = ladder.Run(tmp_path / "run", "micro", ladder.settings_for("micro"), tmp / "units", log=lambda m: None)
    made = tmp_path / "run" / "support" / "prim-00.jsonl"
    made.parent.mkdir()
    made.write_text((tmp / "units" / "prim-00.jsonl").read_text() + json.dumps({"text": "One more line."}) + "\n")
    with pytest.raises(ladder.LadderError, match=r"prim-00\.jsonl: made by this version of practice\.py, it differs "
                                                 r"from the unit 'prim-00' the run's corpus holds"):
        ladder.check_made_alike(run, [made])
    ladder.check_made_alike(run, [tmp / "units" / "prim-00.jsonl"])  # the user's own: add names a changed one
    # the corpus stage asks, where add refuses the files it was given
    others = [f for f in sorted((tmp / "units").glob("*.jsonl")) if f.name != "prim-00.jsonl"]
    monkeypatch.setattr(ladder, "unit_files", lambda run: [made] + others)
    with pytest.raises(ladder.LadderError, match="made by this version of practice.py"):
        ladder.stage_corpus(run)


def test_a_unit_of_the_user_s_edited_since_the_run_began_is_named_and_its_support_left_as_it_was(tmp_path):
    """Continuing a run whose --units file was edited: the edited file is named (not the practice made from
    it, as another version of practice.py's), before the support units are written again."""
    units = tmp_path / "units"
    shutil.copytree(ROOT / "data" / "examples", units)
    run = lambda: ladder.Run(tmp_path / "run", "micro", ladder.settings_for("micro"), units, log=lambda m: None)
    ladder.stage_corpus(run())
    support = {f.name: f.read_bytes() for f in (tmp_path / "run" / "support").iterdir()}
    herbs = units / "herbs.jsonl"
    herbs.write_text(herbs.read_text().replace("\n", "\n" + json.dumps({"text": "One more sentence."}) + "\n", 1))
    with pytest.raises(ladder.LadderError, match=f"^{re.escape(str(herbs))}: differs from the unit 'herbs' the run's "
                                                 "corpus holds"):
        ladder.stage_corpus(run())
    assert {f.name: f.read_bytes() for f in (tmp_path / "run" / "support").iterdir()} == support


def test_a_curriculum_run_on_one_level_begun_by_an_earlier_version_is_kept_and_said_to_be_noise(tmp_path):
    """Its compute was spent and is counted; its difference from the shuffled run is called what it is."""
    units = write_units(tmp_path / "units")
    (units / "facts-01.jsonl").unlink()
    run = ladder.Run(tmp_path / "run", "micro", ladder.settings_for("micro"), units, log=lambda m: None)
    ladder.stage_corpus(run)
    run.corpus.passport.append("unit_verified", unit="facts-00", passed=True)
    levels = ladder.verified_levels(run.corpus)
    assert levels == [0] and ladder.scratch_orders(run, levels) == ("shuffled",)
    assert ladder.scratch_note(run, levels).startswith("No scratch run in curriculum order: the verified units all lie on "
                                               "level 0")
    (tmp_path / "run" / "scratch-curriculum").mkdir()  # as a version that trained one on one level left it
    assert ladder.scratch_orders(run, levels) == ("curriculum", "shuffled")
    assert ladder.scratch_note(run, levels) == (
        "The verified units all lie on level 0, which has no order to test: scratch-curriculum (begun by a version "
        "of ladder.py that trained one there) reads the shuffled run's rows in another random order, so their "
        "difference is training noise, not curriculum order.")


def test_units_on_one_level_give_one_scratch_run_and_the_reports_say_why(tmp_path, ladder_cli):
    """One level has no order to test: a curriculum run would be the shuffled control again, and its
    difference training noise called "curriculum order". The shuffled run alone is trained (no earlier level,
    no replay), set against the grown model, and the report and results say why."""
    units = write_units(tmp_path / "units")
    (units / "facts-01.jsonl").unlink()
    ladder_cli(tmp_path / "run", units)
    corpus = curriculum.Corpus(tmp_path / "run" / "corpus")
    scratch = [e for e in corpus.passport.events("model_trained") if e["mode"] == "pretrain" and not e.get("snapshot")
               and e["selection"]["units"] == ["facts-00"]]
    assert [(e["selection"]["order"], e["selection"]["replay"]) for e in scratch] == [("shuffled", 0.0)]
    assert not (tmp_path / "run" / "scratch-curriculum").exists()
    report = json.loads((tmp_path / "run" / "report" / "report.json").read_text())
    assert "scratch-curriculum" not in report["models"] and list(report["curves"]["runs"]) == ["scratch-shuffled"]
    assert {(c["a"], c["b"]) for c in report["comparisons"]} == {("scratch-shuffled", "merged"), ("finetune", "merged"),
                                                                ("merged", "base")}
    note = ("No scratch run in curriculum order: the verified units all lie on level 0, which has no order to test "
            "(its rows would be the shuffled run's, in another random order).")
    assert report["notes"] == [note]
    for page in ("report.md", "results.md"):
        assert f"\n\n{note}\n\n" in (tmp_path / "run" / "report" / page).read_text()


def test_report_has_a_row_per_stage_and_the_retention_matrix(finished):
    tmp, _ = finished
    report = json.loads((tmp / "run" / "report" / "report.json").read_text())
    assert list(report["stage_seconds"]) == list(ladder.STAGES)  # what each stage took, in order
    assert report["stage_seconds"]["base"] > 0 and all(v >= 0 for v in report["stage_seconds"].values())
    # what each stage's training cost: the adapters' from the passport, the rest from the models' counts
    flops, models = report["training_flops"], report["models"]
    adapters = curriculum.Corpus(tmp / "run" / "corpus").passport.events("adapter_trained")
    assert flops == {"base": models["base"]["flops"], "adapters": sum(a["flops"] for a in adapters),
                     "finetune": models["finetune"]["flops"] - models["base"]["flops"],
                     "scratch": 2 * models["scratch-curriculum"]["flops"]}
    assert min(flops.values()) > 0
    # what it trained with, as ladder.json holds it but for where it ran (report.py seeds checks seeds by it)
    state = json.loads((tmp / "run" / "ladder.json").read_text())
    assert report["settings"] == {"preset": "micro", **{k: v for k, v in state["settings"].items() if k != "device"}}
    assert report["settings"]["seed"] == 0 and report["settings"]["lora_r"] == 4  # the micro preset's rank
    assert list(report["models"]) == ["base", "step1-facts-00", "step2-facts-01", "merged", "finetune",
                                      "scratch-curriculum", "scratch-shuffled"]
    assert report["retention"]["steps"] == ["base", "step1-facts-00", "step2-facts-01"]
    assert len(report["retention"]["acc"]) == 3 and len(report["retention"]["acc"][0]) == 2
    assert any(c["a"] == "scratch-curriculum" and c["b"] == "scratch-shuffled" for c in report["comparisons"])
    # the learning curve: each scratch run at half its compute (micro's curve) and at the end
    runs = report["curves"]["runs"]
    assert sorted(runs) == ["scratch-curriculum", "scratch-shuffled"]
    steps = [p["step"] for p in runs["scratch-curriculum"]]
    assert len(steps) == 2 and steps[1] in (2 * steps[0], 2 * steps[0] + 1)
    assert [p["flops"] for p in runs["scratch-curriculum"]] == [p["flops"] for p in runs["scratch-shuffled"]]
    md = (tmp / "run" / "report" / "report.md").read_text()
    for name in report["models"]:
        assert name in md


def test_a_merged_models_wall_time_and_trainable_params_are_its_adapters(finished):
    tmp, _ = finished
    report = json.loads((tmp / "run" / "report" / "report.json").read_text())
    adapters = curriculum.Corpus(tmp / "run" / "corpus").passport.events("adapter_trained")
    for name, adapter in zip(["step1-facts-00", "step2-facts-01"], adapters):
        model = report["models"][name]
        assert model["seconds"] == adapter["seconds"]  # (micro trainings take a tenth of a second: the base too)
        assert model["trainable_params"] == adapter["trainable_params"] < report["models"]["base"]["trainable_params"]
        assert model["flops"] == adapter["flops_total"] > report["models"]["base"]["flops"]


def test_a_merged_model_s_header_is_the_one_lora_py_writes_for_its_base_and_adapter(finished, tmp_path, capsys):
    import lora
    tmp, _ = finished
    grow = tmp / "run" / "grow"
    for base, step in ((tmp / "run" / "base", "01-facts-00"), (grow / "01-facts-00" / "merged", "02-facts-01")):
        r = run_main(lora.main, ["--checkpoint", base, "--adapter", grow / step, "--out", tmp_path / step], capsys)
        assert r.returncode == 0, r.stderr
        theirs = read_tensors(tmp_path / step / "model.safetensors")[1]
        ours = read_tensors(grow / step / "merged" / "model.safetensors")[1]
        assert ours == theirs
        assert ours["meta"]["base_fingerprint"] == read_tensors(base / "model.safetensors")[1]["meta"]["fingerprint"]
        assert ours["meta"]["step"] > 0 and ours["meta"]["val_loss"] > 0


def test_a_finished_ladder_reruns_nothing_and_gives_the_same_report(finished, ladder_cli):
    tmp, _ = finished
    before = json.loads((tmp / "run" / "report" / "report.json").read_text())
    n_events = len(curriculum.Corpus(tmp / "run" / "corpus").passport.events())
    # an hour's compare recorded: a second compare's time replaces it, as a training stage's adds to its own
    seconds_file = tmp / "run" / "stage_seconds.json"
    recorded = dict(json.loads(seconds_file.read_text()), compare=3600.0)
    seconds_file.write_text(json.dumps(recorded))
    out = ladder_cli(tmp / "run", tmp / "units").stdout
    assert "done earlier" in out
    after = json.loads((tmp / "run" / "report" / "report.json").read_text())
    for name in before["models"]:
        assert after["models"][name]["summary"] == before["models"][name]["summary"]
    assert len(curriculum.Corpus(tmp / "run" / "corpus").passport.events()) == n_events
    # the training stages' seconds add up over the invocations: what the base cost stands; compare's are its
    # last run's, every model scored anew
    took, took_before = after["stage_seconds"], before["stage_seconds"]
    assert took["base"] == pytest.approx(took_before["base"], abs=1.0) and took["base"] > 0
    assert 0 < took["compare"] < 600
    results = (tmp / "run" / "report" / "results.md").read_text()
    assert f"took {sum(took.values()) / 60:.1f} min" in results


def test_a_moved_run_directory_continues_without_training_again(finished, tmp_path, ladder_cli):
    tmp, _ = finished
    before = json.loads((tmp / "run" / "report" / "report.json").read_text())
    shutil.copytree(tmp / "run", tmp_path / "moved")
    n_events = len(curriculum.Corpus(tmp_path / "moved" / "corpus").passport.events())
    for out in ("moved", "moved-again"):  # moved once, then again: the passport names paths under both
        if out == "moved-again":
            (tmp_path / "moved").rename(tmp_path / out)
        stdout = ladder_cli(tmp_path / out, tmp / "units").stdout
        assert "done earlier" in stdout
        assert len(curriculum.Corpus(tmp_path / out / "corpus").passport.events()) == n_events
        after = json.loads((tmp_path / out / "report" / "report.json").read_text())
        assert {n: m["summary"] for n, m in after["models"].items()} == \
            {n: m["summary"] for n, m in before["models"].items()}
    assert json.loads((tmp_path / "moved-again" / "ladder.json").read_text())["outs"] == \
        [str(tmp / "run"), str(tmp_path / "moved"), str(tmp_path / "moved-again")]


def test_a_ladder_stopped_between_stages_matches_an_uninterrupted_one(finished, tmp_path):
    tmp, _ = finished
    s = ladder.settings_for("micro")
    run = ladder.Run(tmp_path / "run", "micro", s, tmp / "units", log=lambda m: None)
    ladder.stage_corpus(run)
    ladder.stage_base(run)  # "stopped" here: a new Run continues from the passport
    report = ladder.run_ladder(ladder.Run(tmp_path / "run", "micro", s, tmp / "units", log=lambda m: None))
    straight = json.loads((tmp / "run" / "report" / "report.json").read_text())
    for name in straight["models"]:
        assert report["models"][name]["summary"] == straight["models"][name]["summary"]
    # and the weights themselves, bit for bit: four probes could agree on weights that do not (the files'
    # headers differ: their paths and seconds)
    for d in ("base", "grow/01-facts-00/merged", "grow/02-facts-01/merged", "finetune", "scratch-curriculum",
              "scratch-shuffled"):
        ours, theirs = (read_tensors(r / d / "model.safetensors")[0] for r in (tmp_path / "run", tmp / "run"))
        assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours), d


def test_other_settings_in_the_same_run_directory_are_refused(finished, ladder_cli):
    tmp, _ = finished
    r = ladder_cli(tmp / "run", tmp / "units", "--lora-epochs", "7", check=False)
    assert r.returncode == 2 and "other settings" in r.stderr and "(--lora-epochs 4.0)" in r.stderr


def test_a_run_of_other_settings_is_refused_before_its_built_in_world_is_made(tmp_path, monkeypatch, capsys):
    """A large world takes minutes to make: the settings a run directory records are read first."""
    monkeypatch.setattr(ladder, "WORLDS", tmp_path / "worlds")
    ladder.Run(tmp_path / "run", "micro", ladder.settings_for("micro"), log=lambda m: None)  # its ladder.json alone
    with pytest.raises(SystemExit) as e:
        ladder.main(["--preset", "micro", "--world-seed", "7", "--out", str(tmp_path / "run")])
    assert e.value.code == 2 and "this run was started with other settings (--world-seed 0)" in capsys.readouterr().err
    assert not (tmp_path / "worlds").exists()


def test_a_run_continues_with_another_report_setting_and_names_a_changed_one_as_its_option(finished):
    tmp, _ = finished
    s = ladder.settings_for("micro")
    # what compare reads off the trained models may change: a finished run is scored again
    ladder.Run(tmp / "run", "micro", ladder.dataclasses.replace(s, samples=2, control="chain=0.9"), tmp / "units",
               log=lambda m: None)
    for changed, said in ((dict(n_layer=3), "without --n-layer"), (dict(compile=True), "without --compile")):
        with pytest.raises(ladder.LadderError, match=rf"other settings \({said}\);"):
            ladder.Run(tmp / "run", "micro", ladder.dataclasses.replace(s, **changed), tmp / "units")


def test_a_run_continues_from_another_working_directory_and_refuses_other_units(finished, tmp_path, monkeypatch):
    tmp, _ = finished
    s = ladder.settings_for("micro")
    monkeypatch.chdir(tmp)
    ladder.Run(Path("run"), "micro", s, "units", log=lambda m: None)
    monkeypatch.chdir(tmp_path)  # the same run and units by other relative paths
    ladder.Run(Path(os.path.relpath(tmp / "run")), "micro", s, os.path.relpath(tmp / "units"), log=lambda m: None)
    shutil.copytree(tmp / "units", tmp_path / "other")
    with pytest.raises(ladder.LadderError, match=rf"other settings \(--units {tmp / 'units'}\)"):
        ladder.Run(tmp / "run", "micro", s, tmp_path / "other")


def test_a_run_started_before_a_setting_existed_continues_at_its_default_and_not_at_another_value(finished):
    tmp, _ = finished
    state = tmp / "run" / "ladder.json"
    saved = state.read_text()
    try:
        old = json.loads(saved)
        del old["settings"]["ft_order"]  # as a ladder.json written before the setting was added
        state.write_text(json.dumps(old))
        s = ladder.settings_for("micro")
        # the fine-tune was level by level then; mixed is the default now
        ladder.Run(tmp / "run", "micro", ladder.dataclasses.replace(s, ft_order="curriculum"), tmp / "units",
                   log=lambda m: None)  # continues
        with pytest.raises(ladder.LadderError, match=r"other settings \(--ft-order curriculum\);"):
            ladder.Run(tmp / "run", "micro", s, tmp / "units")
    finally:
        state.write_text(saved)


def test_the_gate_asks_the_adapter_for_the_least_gain_set(finished, tmp_path):
    """--min-gain reaches the gate: micro's gate passes facts-00's adapter, which a gain of 100
    points (more than it can rise from what the base already scored) rejects, saying why."""
    tmp, _ = finished
    shutil.copytree(tmp / "run", tmp_path / "run")
    run = ladder.Run(tmp_path / "run", "micro", ladder.settings_for("micro"), tmp / "units", log=lambda m: None)
    adapter = run.finished(tmp_path / "run" / "grow" / "01-facts-00", "adapter_trained")
    adapter = dict(adapter, adapter_sha256="unrecorded")  # so the gate measures it now, not from the passport

    def gate(**settings):
        run.s = ladder.settings_for("micro", **settings)
        return ladder.grow_verdict(run, "facts-00", tmp_path / "run" / "base", adapter)

    passed, rejected = gate(), gate(min_gain=1.0)
    assert passed["passed"] and passed["thresholds"]["min_gain"] == 0.0
    gain = rejected["gated"]["gain"]
    assert not rejected["passed"] and rejected["thresholds"]["min_gain"] == 1.0 and gain["diff"] < 1.0
    assert rejected["reasons"] == [f"accuracy changed by {100 * gain['diff']:+.0f} points over the model without the "
                                   f"adapter (95% CI {points_range(gain['lo'], gain['hi'])} points), less than the "
                                   "least gain, 100 points"]


def test_the_fine_tune_reads_the_units_in_the_order_asked(finished, tmp_path, ladder_cli):
    def finetune_order(run):
        passport = curriculum.Corpus(run / "corpus").passport
        (ft,) = [e for e in passport.events("model_trained") if e["mode"] == "finetune"]
        return ft["selection"]["order"]

    ladder_cli(tmp_path / "run", write_units(tmp_path / "units"), "--ft-order", "curriculum")
    assert finetune_order(tmp_path / "run") == "curriculum"
    assert finetune_order(finished[0] / "run") == "shuffled"  # the default


def test_a_changed_checkpoint_is_refused_and_never_used(finished, ladder_cli):
    tmp, _ = finished
    file = tmp / "run" / "base" / "model.safetensors"
    good = file.read_bytes()
    try:
        file.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
        r = ladder_cli(tmp / "run", tmp / "units", check=False)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
        assert "base/model.safetensors: sha256 differs from the passport's model_trained event" in r.stderr
    finally:
        file.write_bytes(good)


def test_a_deleted_merged_milestone_is_merged_again_as_it_was(finished, tmp_path):
    """A kept merged model deleted since is merged again (as a deleted training is trained again), on the
    merged model before it merged again too where that was pruned, and pruned again after."""
    tmp, _ = finished
    shutil.copytree(tmp / "run", tmp_path / "run")
    grow = tmp_path / "run" / "grow"
    last = grow / "02-facts-01" / "merged" / "model.safetensors"
    made = last.read_bytes()
    last.unlink()
    lines = []
    run = ladder.Run(tmp_path / "run", "micro", ladder.settings_for("micro"), tmp / "units", log=lines.append)
    run.s = ladder.settings_for("micro", keep_steps=1)  # the first merged model is pruned: the last one's base
    steps, _ = ladder.stage_grow(run)
    assert steps == [("step2-facts-01", grow / "02-facts-01" / "merged")]
    assert last.read_bytes() == made and not (grow / "01-facts-00" / "merged").exists()
    assert run.finished(grow / "02-facts-01" / "merged")["checkpoint"] == str(last)  # its sha256 recorded
    assert f"    {last}: deleted since it was made; merging it again" in lines


def test_a_deleted_merged_model_that_a_step_still_to_run_needs_is_merged_again_first(finished, tmp_path):
    """The second adapter is gone, and so is the merged model it trains on: that one is merged again
    before the adapter trains, and the adapter comes out as it was."""
    tmp, _ = finished
    shutil.copytree(tmp / "run", tmp_path / "run")
    grow = tmp_path / "run" / "grow"
    first, adapter = grow / "01-facts-00" / "merged" / "model.safetensors", grow / "02-facts-01" / "adapter.safetensors"
    made = first.read_bytes(), read_tensors(adapter)[0]
    first.unlink()
    for f in (adapter, grow / "02-facts-01" / "train_state.safetensors"):
        f.unlink(missing_ok=True)
    lines = []
    run = ladder.Run(tmp_path / "run", "micro", ladder.settings_for("micro"), tmp / "units", log=lines.append)
    steps, _ = ladder.stage_grow(run)
    assert [n for n, _ in steps] == ["step1-facts-00", "step2-facts-01"]
    weights = read_tensors(adapter)[0]  # its header differs: the seconds the training took
    assert first.read_bytes() == made[0] and weights.keys() == made[1].keys()
    assert all(weights[k].equal(made[1][k]) for k in weights)
    assert lines.index(f"    {first}: deleted since it was made; merging it again") < \
        next(k for k, m in enumerate(lines) if "verify facts-01" in m)


def test_knowledge_units_alone_get_primitive_text_a_register_and_practice_recorded_in_the_passport(tmp_path):
    units = tmp_path / "units"
    units.mkdir()
    for f in ("villages.jsonl", "ships.jsonl"):
        (units / f).write_bytes((ROOT / "data" / "examples" / f).read_bytes())
    lines = []
    run = ladder.Run(tmp_path / "run", "micro", ladder.settings_for("micro"), units, log=lines.append)
    ladder.stage_corpus(run)
    c = run.corpus
    assert c.knowledge_units() == ["ships", "villages"]
    assert c.primitive_units() == ["practice-ships", "practice-villages", "prim-00", "prim-01", "prim-02"]
    sources = {e["unit"]: e["header"]["source"] for e in c.passport.events("unit_added")}
    assert sources["practice-ships"] == "derived by accrete practice.py from ships.jsonl"
    assert sources["prim-00"].startswith("accrete data/world/prepare.py")
    said = "\n".join(lines)
    assert "added the built-in primitive text (3 units)" in said and "added practice-villages" in said
    assert "villages: the gate reads 24 of its 48 recall probes, chance 25%" in said  # what it takes to pass the gate


def test_a_unit_that_cannot_pass_the_gate_is_named_when_the_ladder_adds_it(tmp_path):
    units = write_units(tmp_path / "units")
    header = {"unit": "pair", "kind": "knowledge", "level": 0, "title": "pair", "concepts": ["blick"], "requires": [],
              "source": "test", "license": "CC0-1.0"}
    probes = [{"probe": f"Q: Is the blick {c}? A: It is", "answer": a, "choices": ["yes", "no"], "type": "recall"}
              for c, a in (("red", "no"), ("blue", "yes"))]
    (units / "pair.jsonl").write_text("".join(json.dumps(x) + "\n" for x in
                                              [header, {"text": "The blick is blue, not red."}] + probes))
    lines = []
    s = ladder.settings_for("micro", threshold=0.5, clear_of_chance=True)
    ladder.stage_corpus(ladder.Run(tmp_path / "run", "micro", s, units, log=lines.append))
    said = "\n".join(lines)
    # the gate reads one probe of two choices: even right, it cannot be told from chance (50%)
    assert "warning: pair: the gate reads 1 of its 2 recall probes, chance 50%: cannot pass the gate, even with " \
           "all 1 correct (a perfect score clears chance from 6 probes); give it more probes" in said
    assert "warning: facts-00: the gate reads 2 of its 4 recall probes, chance 25%: cannot pass the gate" in said


def test_an_adapter_reads_its_unit_for_its_epochs_and_at_least_the_fewest_steps(tmp_path):
    units = write_units(tmp_path / "units")
    s = ladder.settings_for("micro", lora_epochs=4.0, lora_primitive_share=0.5, lora_min_steps=1)
    run = ladder.Run(tmp_path / "run", "micro", s, units, log=lambda line: None)
    ladder.stage_corpus(run)
    tokens, per_step = run.corpus.units["facts-00"]["tokens"], run.tokens_per_step()
    steps = lambda replay: ladder.adapter_steps(run.s, tokens, per_step, replay)
    # 4 epochs over its own rows, half of them (the rest primitive), then half again with replay
    assert steps(0.0) == -(-4 * tokens * 2 // per_step)
    assert steps(0.5) == -(-4 * tokens * 4 // per_step)
    run.s = ladder.settings_for("micro", lora_epochs=4.0, lora_primitive_share=0.5, lora_min_steps=500)
    assert steps(0.0) == 1000  # 500 steps' worth of its own rows, half of each step
    assert steps(0.5) == 2000


def test_an_adapter_warms_up_for_lora_warmup_steps_at_most_half_its_steps(tmp_path, monkeypatch):
    units = write_units(tmp_path / "units")
    run = ladder.Run(tmp_path / "run", "micro", ladder.settings_for("micro", lora_warmup=20), units,
                     log=lambda line: None)
    ladder.stage_corpus(run)
    seen = []
    monkeypatch.setattr(ladder.Run, "train", lambda self, d, **kw: seen.append(kw))
    for min_steps in (80, 1):  # 80 steps' worth of its own rows, at 80% of each step (micro's primitive share 0.2)
        run.s = ladder.settings_for("micro", lora_warmup=20, lora_min_steps=min_steps)
        ladder.grow_adapter(run, tmp_path / "a", "facts-00", "base", [])
    # the unit's epochs alone: fewer than 40 steps
    few = ladder.adapter_steps(run.s, run.corpus.units["facts-00"]["tokens"], run.tokens_per_step(), 0.0)
    assert few < 40 and [(kw["max_steps"], kw["warmup"]) for kw in seen] == [(100, 20), (few, few // 2)]


BUILT_IN = "(on the built-in world)"  # a refusal case's marker: without the test's --units


def test_the_learning_curve_snapshots_fractions_of_the_run_but_never_its_last_step():
    assert ladder.snapshot_steps([0.25, 0.5, 0.75, 1.0], 2110) == (528, 1055, 1582)
    # a run of two steps: 0.75 rounds to the last step, the run's own output, which is scored anyway
    assert ladder.snapshot_steps([0.25, 0.5, 0.75, 1.0], 2) == (1,)


@pytest.mark.parametrize("args, says", [
    (["--control", "chain=lots"], "--control: 'chain=lots' is not TYPE=ACCURACY (e.g. chain=0.5)"),
    (["--seeds", "0"], "--seeds must be at least 1"),
    (["--threshold", "2"], "--threshold 2.0: must be between 0 and 1"),
    (["--min-gain", "-0.1"], "--min-gain -0.1: must be between 0 and 1"),
    (["--lora-primitive-share", "1"], "--lora-primitive-share 1.0: must be at least 0 and below 1"),
    (["--lora-lr", "-1"], "--lora-lr -1.0: must be positive"),
    (["--vocab-size", "100"], "--vocab-size 100: the BPE needs at least 257"),
    ([BUILT_IN, "--world-tokens", "10"], "--world-tokens 10: use at least 50000"),
    (["--ft-epochs", "0"], "--ft-epochs 0.0: must be positive and finite"),
    (["--curve", "0.5,abc"], "--curve '0.5,abc': give fractions of the scratch compute, each above 0 and at most 1"),
    (["--lora-alpha", "0"], "--lora-alpha 0.0: must be positive and finite"),
    (["--control", "recall=0.5,chian=0.5"], "--control recall=0.5,chian=0.5: no unit has probes of type 'chian'"),
    (["--keep-steps", "-1"], "--keep-steps -1: must be 0 or more"),
    (["--samples", "-1"], "--samples -1: must be 0 or more"),
    (["--lora-min-steps", "-1"], "--lora-min-steps -1: must be 0 or more"),
    (["--units", "data/examples", "--practice-copies", "0"], "--practice-copies 0: must be positive and finite"),
    (["--lora-alpha", "inf"], "--lora-alpha inf: must be positive and finite"),
    (["--scratch-lr", "nan"], "--scratch-lr nan: must be positive and finite"),
    (["--n-head", "3"], "model config: n_embd 64 is not a multiple of n_head 3"),
    (["--device", "cuda:7"], "--device cuda:7: "),
    (["--units", "no/such/dir"], "--units no/such/dir: no such directory"),
    # one directory given twice: refused at once, not in stage 1 as each unit's id given twice
    (["--units", "data/examples", "--primitive", "data/examples"], "--primitive data/examples: is the --units "
     "directory; give the primitive units a directory of their own"),
    (["--units", "data/examples", "--primitive", "./data/../data/examples/"], "--primitive ./data/../data/examples/: "
     "is the --units directory"),
    # more memory than any machine has: refused before the corpus, not at the base, with the run left half made
    (["--batch-size", "10000000"], "--batch-size 10000000: a micro-batch of 10000000 sequences of 64 tokens keeps"),
    (["--n-embd", "65536"], "a model of vocab_size 512, block_size 64, n_layer 2 and n_embd 65536 has"),
    (["--gate-on", "recal"], "--gate-on recal: no unit has probes of that type (all: every type)"),
    # checked by train.py too, but only once the corpus and the base had been written
    (["--seed", "-1"], "--seed -1: must be a whole number from 0 to 2**32 - 1"),
    (["--seeds", "3", "--seed", str(2 ** 32 - 2)], "--seeds 3 with --seed 4294967294: seed 4294967296 is past "
     "2**32 - 1 (each must be a whole number from 0 to 2**32 - 1)"),
    # a setting saved in ladder.json that would do nothing
    ([BUILT_IN, "--preset", "small", "--world-size", "tiny"], "--world-size tiny with --preset small, whose world "
     "is --world-tokens 100000000: give --world-tokens instead"),
    ([BUILT_IN, "--preset", "gpt2", "--world-size", "small"], "--world-size small with --preset gpt2, whose world "
     "is --world-tokens 100000000: give --world-tokens instead"),
    ([BUILT_IN, "--world-size", "small", "--world-tokens", "60000"], "--world-size small with --world-tokens 60000: "
     "the token count sets the world's size; give one of them"),
    ([BUILT_IN, "--practice-copies", "4"], "--practice-copies goes with --units (the built-in world has its own "
     "practice)"),
    (["--world-size", "small"], "--world-size goes with the built-in world, not --units (your units are the world)"),
    (["--preset", "small", "--world-tokens", "60000"], "--world-tokens goes with the built-in world, not --units"),
    (["--cooccur-docs", "decoys"], "--cooccur-docs goes with the built-in world, not --units"),
    (["--primitive", "data/examples", "--practice-copies", "4"], "--practice-copies with --primitive: no practice "
     "is added (only knowledge units alone get it), so it would do nothing"),
    (["--primitive", "data/examples", "--world-seed", "3"], "--world-seed with --primitive: no practice is added"),
    (["--world-seed", "3"], "--world-seed with --units "),  # the test's units have a primitive unit
    (["--practice-copies", "4"], "--practice-copies with --units ")])
def test_bad_options_are_refused_in_one_line_before_anything_is_written(tmp_path, args, says, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)  # in-process, as the command line would run it: relative paths as there
    for name in ("world_files", "run_ladder"):  # a refusal that failed makes no world and trains nothing
        monkeypatch.setattr(ladder, name, lambda *a, _name=name, **k: pytest.fail(f"{_name} ran: {args} not refused"))
    units = [] if BUILT_IN in args else ["--units", str(write_units(tmp_path / "units"))]
    with pytest.raises(SystemExit) as e:
        ladder.main(["--preset", "micro", "--out", str(tmp_path / "run"), *units, *(a for a in args if a != BUILT_IN)])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert e.value.code == 2 and len(lines) == 1 and lines[0].startswith(f"error: {says}"), err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("name, text, says", [
    ("ladder.json", None, 'not valid JSON (Unterminated string starting at: '),  # truncated
    ("ladder.json", "", "not valid JSON (Expecting value: line 1 column 1 (char 0))"),
    ("ladder.json", "{}", '"settings" must be a JSON object of the run\'s settings'),
    ("ladder.json", "[]", "must be a JSON object, not a JSON array"),
    ("ladder.json", '{"settings": "x"}', '"settings" must be a JSON object of the run\'s settings'),
    ("ladder.json", '{"settings": {}, "outs": "run"}', '"outs" must be a list of the directories'),
    ("stage_seconds.json", "garbage", "not valid JSON (Expecting value: line 1 column 1 (char 0))"),
    ("stage_seconds.json", "[1, 2]", "must be a JSON object, not a JSON array"),
    ("stage_seconds.json", '{"base": "1.5"}', '"base" must be the seconds the stage took (a number, 0 or more), '
     "not '1.5'")])
def test_a_damaged_state_file_is_refused_in_one_line_naming_it_before_anything_runs(
        tmp_path, capsys, monkeypatch, name, text, says):
    units = write_units(tmp_path / "units")
    run = tmp_path / "run"
    ladder.Run(run, "micro", ladder.settings_for("micro"), units, log=lambda m: None)  # writes ladder.json alone
    (run / "stage_seconds.json").write_text('{"corpus": 1.5}\n')
    file = run / name
    file.write_text(file.read_text()[:60] if text is None else text)
    before = snapshot(run)
    for stage in ("stage_corpus", "stage_base"):  # refused before any stage runs
        monkeypatch.setattr(ladder, stage, lambda *a, _s=stage: pytest.fail(f"{_s} ran on a damaged {name}"))
    r = run_main(ladder.main, ["--preset", "micro", "--out", run, "--units", units], capsys)
    assert r.returncode == 2 and r.stderr.startswith(f"error: {file}: {says}"), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert snapshot(run) == before


@pytest.mark.parametrize("case", ["knowledge as primitive", "primitive only", "no probes"])
def test_unit_directories_a_run_could_only_fail_on_are_refused_before_anything_is_written(tmp_path, case, capsys):
    """A knowledge unit given as --primitive, --units with nothing to grow, a unit add would refuse: each named
    now, in one line, not in a later stage with the run half made."""
    units = write_units(tmp_path / "units")
    extra, says = [], None
    if case == "knowledge as primitive":
        (tmp_path / "prim").mkdir()
        shutil.copy(ROOT / "data" / "examples" / "herbs.jsonl", tmp_path / "prim")
        extra = ["--primitive", str(tmp_path / "prim")]
        says = (f"--primitive {tmp_path / 'prim'}: herbs.jsonl is a knowledge unit; the directory holds the primitive "
                "units a base pretrains on (knowledge units go in --units)")
    elif case == "primitive only":
        for f in ("facts-00.jsonl", "facts-01.jsonl"):
            (units / f).unlink()
        says = f"--units {units}: holds no knowledge unit, only primitive ones: nothing to grow"
    else:
        for f in (units / "facts-00.jsonl", units / "facts-01.jsonl"):  # no probe at all: not the gate's type to blame
            f.write_text("".join(line + "\n" for line in f.read_text().splitlines() if '"probe"' not in line))
        says = f"{units / 'facts-00.jsonl'}:1: knowledge unit 'facts-00' has no probes"
    with pytest.raises(SystemExit) as e:
        ladder.main(["--preset", "micro", "--out", str(tmp_path / "run"), "--units", str(units), *extra])
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.strip().splitlines()) == 1 and err.startswith(f"error: {says}"), err
    assert not (tmp_path / "run").exists()


def test_a_unit_file_that_cannot_be_read_is_one_line_and_a_begun_run_reads_only_headers(tmp_path, monkeypatch):
    """Root reads any file, so an unreadable one is made by a read that fails. A run whose corpus holds its
    units read them through when they were added: continuing it reads each header, not every line again."""
    units = write_units(tmp_path / "units")

    def unreadable(path):
        raise PermissionError(13, "Permission denied", str(path))
    monkeypatch.setattr(curriculum, "inspect_unit", unreadable)
    with pytest.raises(ladder.LadderError, match=f"^{re.escape(str(units / 'facts-00.jsonl'))}: cannot be read "
                                                 r"\(Permission denied\)$"):
        ladder.check_unit_dirs(units, None)
    ladder.check_unit_dirs(units, None, whole=False)  # headers alone: inspect_unit is not called


@pytest.mark.parametrize("out, says", [
    ("afile", "{out}: is a file, where the output directory would be made"),
    ("afile/sub", "{tmp}/afile: is a file, not a directory, so {out} cannot be made there"),
    ("/dev/null/x", "/dev/null: is a file, not a directory, so /dev/null/x cannot be made there"),
    ("many/seed-1", "{out}: is a file, where the output directory would be made"),  # the second seed's
    ("many/report", "{out}: is a file, where the output directory would be made")])  # the page across seeds
def test_an_out_that_cannot_be_a_directory_is_refused_before_anything_is_written(tmp_path, capsys, out, says):
    units = write_units(tmp_path / "units")
    (tmp_path / "afile").write_text("mine\n")
    (tmp_path / "many").mkdir()
    (tmp_path / "many" / out.split("/")[-1]).write_text("mine\n")
    out = tmp_path / out
    before = snapshot(tmp_path)
    seeds = ["--out", out.parent, "--seeds", "2"] if out.parent.name == "many" else ["--out", out]
    r = run_main(ladder.main, ["--preset", "micro", "--units", units, *seeds], capsys)
    assert r.returncode == 2 and r.stderr == f"error: {says.format(out=out, tmp=tmp_path)}\n", r.stderr
    assert snapshot(tmp_path) == before and not (tmp_path / "many" / "seed-0").exists()


@pytest.mark.parametrize("damage", ["a leaking probe", "no unit files"])
def test_a_first_corpus_refused_leaves_no_run_to_continue(tmp_path, capsys, damage):
    units = write_units(tmp_path / "units")
    if damage == "a leaking probe":  # caught by add, after the tokenizer was trained on these files
        with open(units / "facts-00.jsonl", "a") as f:
            f.write(json.dumps({"text": "Q: What color is the blick? A: The blick is red."}) + "\n")
    else:
        units = tmp_path / "empty"
        units.mkdir()
    p = run_main(ladder.main, ["--preset", "micro", "--out", tmp_path / "run", "--units", units], capsys)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert ("leakage" if damage == "a leaking probe" else "no unit files") in p.stderr
    # nothing left: run again on mended units, it starts afresh rather than continuing on the refused files' tokenizer
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("damage", ["a unit cut short", "a corpus directory of mine", "a leaking probe"])
def test_a_first_corpus_refused_keeps_what_was_in_the_run_directory(tmp_path, capsys, damage):
    run, units = tmp_path / "run", tmp_path / "units"
    (run / "support").mkdir(parents=True)
    (run / "support" / "notes.txt").write_text("mine\n")
    (run / "corpus").mkdir()  # empty: curriculum.init puts the corpus in its place
    if damage == "a corpus directory of mine":  # refused by curriculum.init
        (run / "corpus" / "notes.txt").write_text("mine\n")
        write_units(units)
        says = f"{run / 'corpus'}: already exists and is not an empty directory; choose a new corpus directory"
    else:  # knowledge units alone: support units are made for them beside the notes
        shutil.copytree(ROOT / "data" / "examples", units, ignore=shutil.ignore_patterns("*.md"))
        ships = units / "ships.jsonl"
        if damage == "a unit cut short":  # refused while reading them for the support units
            ships.write_text(ships.read_text() + '{"text": "x"\n')
            n = len(ships.read_text().splitlines())
            says = f"{ships}:{n}: invalid JSON (Expecting ',' delimiter, column 13)"
        else:  # refused by curriculum.add, once the support units and the corpus are written
            rows = [json.loads(line) for line in ships.read_text().splitlines()]
            i, probe = next((i, r) for i, r in enumerate(rows, 1) if "probe" in r)
            ships.write_text(ships.read_text() + json.dumps({"text": f"{probe['probe']} {probe['answer']}."}) + "\n")
            (run / "support" / "prim-00.jsonl").write_text("an earlier support unit, which this run replaces\n")
            says = (f"{ships}:{i}: leakage: the probe's prompt (or its lead) + answer appears in a document "
                    f"({ships}:{len(rows) + 1})")
    before = snapshot(tmp_path, dirs=True)
    r = run_main(ladder.main, ["--preset", "micro", "--out", run, "--units", units], capsys)
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
    exact = damage != "a leaking probe"  # its message goes on to say how to mend it
    assert r.stderr == f"error: {says}\n" if exact else r.stderr.startswith(f"error: {says}"), r.stderr
    assert snapshot(tmp_path, dirs=True) == before


def test_a_finished_run_whose_passport_is_gone_is_refused_and_kept_as_it_was(finished, tmp_path, capsys):
    tmp, _ = finished
    run = tmp_path / "run"  # a copy: moved, so ladder.json would name one more directory
    shutil.copytree(tmp / "run", run)
    (run / "corpus" / "passport.jsonl").rename(tmp_path / "passport.bak")
    before = snapshot(tmp_path)
    r = run_main(ladder.main, ["--preset", "micro", "--out", run, "--units", tmp / "units"], capsys)
    assert r.returncode == 2 and r.stderr == (f"error: {run / 'corpus'}: already exists and is not an empty "
                                              "directory; choose a new corpus directory\n"), r.stderr
    assert snapshot(tmp_path) == before  # the corpus, ladder.json and stage_seconds.json among them


@pytest.mark.parametrize("flag", ["--units", "--primitive"])
def test_a_directory_named_like_a_unit_file_is_refused_in_one_line_before_anything_is_written(
        tmp_path, capsys, flag):
    units = write_units(tmp_path / "units")
    given = tmp_path / "given"
    shutil.copytree(units if flag == "--units" else ROOT / "data" / "examples", given,
                    ignore=shutil.ignore_patterns("*.md"))
    (given / "zz.jsonl").mkdir()
    args = ["--units", given] if flag == "--units" else ["--units", units, "--primitive", given]
    r = run_main(ladder.main, ["--preset", "micro", "--out", tmp_path / "run", *args], capsys)
    assert r.returncode == 2 and r.stderr == f"error: {given / 'zz.jsonl'}: is a directory, not a unit file\n", \
        r.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("out, says", [
    ("corpus", "{out}: is a corpus directory (its passport.jsonl), which holds the corpus and nothing else; write "
     "to another directory"),
    ("corpus/shards/run", "{out}: is inside the corpus directory {tmp}/corpus (its passport.jsonl), which holds the "
     "corpus and nothing else"),
    ("bare-corpus", "{out}: is a corpus directory (its tokenizer.json)"),  # its passport gone
    ("base", "{out}: is a checkpoint directory (its model.safetensors), which holds one training's files and "
     "nothing else; write to another directory"),
    ("base/run", "{out}: is inside the checkpoint directory {tmp}/base (its model.safetensors)"),
    ("lora", "{out}: is a checkpoint directory (its adapter.safetensors)"),
    ("stopped", "{out}: is a checkpoint directory (its train_state.safetensors)"),
    ("units", "{out}: is the --units directory, whose unit files the run reads; write to another directory"),
    ("units/../units/", "{out}: is the --units directory, whose unit files the run reads"),
    ("units/run", "{out}: is inside the --units directory {tmp}/units, whose unit files the run reads"),
    ("prim", "{out}: is the --primitive directory, whose unit files the run reads"),
    ("worlds/tiny/run", "{out}: is inside the built-in worlds' directory {tmp}/worlds, where each world is remade "
     "whole when prepare.py changes")])
def test_an_out_among_another_command_s_files_or_the_units_it_reads_is_refused_before_anything_is_written(
        tmp_path, capsys, monkeypatch, out, says):
    monkeypatch.setattr(ladder, "WORLDS", tmp_path / "worlds")
    monkeypatch.setattr(ladder, "run_ladder", lambda run: pytest.fail(f"--out {out} not refused: the ladder ran"))
    units, prim = write_units(tmp_path / "units"), tmp_path / "prim"
    prim.mkdir()
    shutil.move(units / "prim-00.jsonl", prim)  # the units' own primitive unit, given apart
    for d, name in [("corpus", "passport.jsonl"), ("corpus", "tokenizer.json"), ("bare-corpus", "tokenizer.json"),
                    ("base", "model.safetensors"), ("lora", "adapter.safetensors"),
                    ("stopped", "train_state.safetensors"), ("worlds/tiny", "atoms-00.jsonl")]:
        (tmp_path / d).mkdir(parents=True, exist_ok=True)
        (tmp_path / d / name).write_text("theirs\n")
    (tmp_path / "corpus" / "shards").mkdir()
    before = snapshot(tmp_path, dirs=True)
    r = run_main(ladder.main, ["--preset", "micro", "--out", tmp_path / out, "--units", units, "--primitive", prim],
                 capsys)
    said = "--out " + says.format(out=tmp_path / out, tmp=tmp_path)
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1 and r.stderr.startswith(f"error: {said}"), r.stderr
    assert snapshot(tmp_path, dirs=True) == before


@pytest.mark.parametrize("args, settings", [
    (["--units", "data/examples", "--practice-copies", "4", "--world-seed", "3"],
     dict(practice_copies=4, world_seed=3)),  # knowledge units alone: the practice they get
    (["--preset", "small", "--units", "data/examples"], dict(world_size="tiny", world_tokens=100_000_000)),
    (["--preset", "small", "--world-tokens", "60000"], dict(world_size="tiny", world_tokens=60000)),
    (["--world-size", "small", "--world-seed", "2"], dict(world_size="small", world_tokens=None, world_seed=2)),
    (["--cooccur-docs", "split"], dict(cooccur_docs="split")), ([], dict(cooccur_docs="plain"))])
def test_world_and_practice_settings_that_take_effect_are_kept(tmp_path, args, settings, monkeypatch):
    seen = []
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(ladder, "world_files", lambda s, preset, log=print: [])  # no world made: the gate's type unchecked
    monkeypatch.setattr(ladder, "run_ladder", lambda run: seen.append(run.s) or {})
    monkeypatch.setattr(ladder, "summary_lines", lambda report: [])
    monkeypatch.setattr(ladder, "control_lines", lambda *a: [])
    monkeypatch.setattr(ladder, "write_results", lambda *a, **k: None)
    ladder.main(["--preset", "micro", "--out", str(tmp_path / "r"), *args])
    assert {k: getattr(seen[0], k) for k in settings} == settings


def test_ctrl_c_ends_the_ladder_in_one_line_saying_how_to_go_on(monkeypatch, capsys, tmp_path):
    def stop(run):
        raise KeyboardInterrupt
    monkeypatch.setattr(ladder, "run_ladder", stop)
    with pytest.raises(SystemExit) as e:
        ladder.main(["--preset", "micro", "--out", str(tmp_path / "run"), "--units", str(write_units(tmp_path / "u"))])
    assert e.value.code == 130
    assert capsys.readouterr().err == "interrupted: run the same command to continue where it stopped\n"


def test_each_seed_s_run_directory_is_named_by_its_seed(tmp_path):
    assert ladder.seed_runs(tmp_path, 5, 1) == [(5, tmp_path)]
    assert ladder.seed_runs(tmp_path, 5, 3) == [(5, tmp_path / "seed-5"), (6, tmp_path / "seed-6"),
                                                 (7, tmp_path / "seed-7")]


def test_help_shows_what_the_default_preset_sets():
    text = " ".join(ladder.parser().format_help().split())
    assert "epochs over the primitive units (tiny: 13.0)" in text and "sequences per micro-batch (tiny: 16)" in text


@pytest.mark.parametrize("name", list(ladder.presets.PRESETS))
def test_every_preset_passes_the_settings_check(name, monkeypatch):
    # raises a LadderError naming what is wrong; gate_on "all" spares making the 100M-token worlds
    checked = []
    monkeypatch.setattr(ladder.bpe, "gpt2", lambda: checked.append("gpt2"))  # its files need a download
    ladder.check_settings(ladder.settings_for(name, gate_on="all"), name)
    assert checked == (["gpt2"] if name == "gpt2" else [])


def test_each_world_seed_has_its_own_world_made_whole_and_again_when_prepare_py_changes(tmp_path, monkeypatch):
    monkeypatch.setattr(ladder, "WORLDS", tmp_path)
    quiet = dict(log=lambda m: None)
    s0 = ladder.settings_for("tiny")
    s1 = ladder.dataclasses.replace(s0, world_seed=1)
    f0, f1 = ladder.world_files(s0, "tiny", **quiet), ladder.world_files(s1, "tiny", **quiet)
    assert [f.name for f in f0] == [f.name for f in f1] and len(f0) == 9
    assert (f0[0].parent, f1[0].parent) == (tmp_path / "tiny", tmp_path / "tiny-seed-1")
    assert all(a.read_bytes() != b.read_bytes() for a, b in zip(f0, f1))
    assert json.loads(f1[0].read_text().splitlines()[0])["source"].endswith("seed=1")
    made = [f.read_bytes() for f in f0]
    import prepare  # data/world, on the path once world_files has run

    def stopped(out, **kw):  # a generation stopped after its first unit
        Path(out).mkdir()
        (Path(out) / "prim-00.jsonl").write_text("{}\n")
        raise KeyboardInterrupt
    monkeypatch.setattr(prepare, "generate", stopped)
    assert ladder.world_files(s1, "tiny", **quiet) == f1  # made already: not made again
    with pytest.raises(KeyboardInterrupt):
        ladder.world_files(ladder.dataclasses.replace(s0, world_seed=2), "tiny", **quiet)
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".lock") == ["tiny", "tiny-seed-1"]
    monkeypatch.undo()
    monkeypatch.setattr(ladder, "WORLDS", tmp_path)
    (tmp_path / "tiny" / "world.json").write_text('{"prepare_sha256": "an older prepare.py"}')
    (tmp_path / "tiny" / "atoms-00.jsonl").write_text("{}\n")
    assert ladder.world_files(s0, "tiny", **quiet) == f0 and [f.read_bytes() for f in f0] == made  # made again


def test_a_world_with_other_cooccur_documents_is_made_apart_and_says_so_in_its_units(tmp_path, monkeypatch):
    monkeypatch.setattr(ladder, "WORLDS", tmp_path)
    s = ladder.settings_for("tiny", world_seed=1)
    choices = next(f for f in ladder.dataclasses.fields(ladder.Settings) if f.name == "cooccur_docs").metadata["choices"]
    assert choices == ladder.world_module().COOCCUR_DOCS == ("plain", "decoys", "split")  # one list, two places
    plain, decoys, split = (ladder.world_files(ladder.dataclasses.replace(s, cooccur_docs=d), "tiny", log=lambda m: None)
                           for d in choices)
    assert [w[0].parent.name for w in (plain, decoys, split)] == ["tiny-seed-1", "tiny-decoys-seed-1", "tiny-split-seed-1"]
    sources = [json.loads(w[-1].read_text().splitlines()[0])["source"] for w in (plain, decoys, split)]
    assert [src.split("prepare.py ")[1] for src in sources] == ["seed=1", "seed=1 cooccur-decoys", "seed=1 cooccur-split"]
    assert len({w[-1].read_bytes() for w in (plain, decoys, split)}) == 3  # all kept: none remade another


def test_a_longer_context_gets_a_world_of_its_own_made_for_its_window(tmp_path, monkeypatch):
    """The built-in world keeps each ood premise pair more than a training window apart (prepare.py's
    window, tested in test_world.py): the model's context + 1, at least the tiny model's; a longer
    context is a world of its own, and one longer than the world's units can keep is refused."""
    monkeypatch.setattr(ladder, "WORLDS", tmp_path)
    windows = {name: ladder.world_window(ladder.settings_for(name), name) for name in ladder.presets.PRESETS}
    assert windows == {"micro": 129, "tiny": 129, "smoke": 257, "small": 1025, "gpt2": 1025}
    s, quiet = ladder.settings_for("tiny", world_seed=1), dict(log=lambda m: None)
    tiny, smoke = ladder.world_files(s, "tiny", **quiet), ladder.world_files(s, "smoke", **quiet)
    assert [w[0].parent.name for w in (tiny, smoke)] == ["tiny-seed-1", "tiny-window-257-seed-1"]
    assert json.loads(smoke[-1].read_text().splitlines()[0])["source"].endswith("prepare.py seed=1 window=257")
    assert [f.read_bytes() for f in tiny] != [f.read_bytes() for f in smoke]
    assert ladder.world_files(ladder.dataclasses.replace(s, block_size=32), "tiny", **quiet) == tiny  # shared
    with pytest.raises(ladder.LadderError) as e:
        ladder.world_files(ladder.dataclasses.replace(s, world_tokens=250_000), "small", **quiet)
    assert str(e.value) == ("the model's context of 1024 tokens is longer than the built-in world's kinds-00 can "
                            "keep its ood premises apart for; give a larger --world-tokens or a shorter --block-size")
    assert not (tmp_path / "tokens-250000-window-1025-seed-1").exists()


def test_a_run_started_with_the_decoys_flag_continues_with_its_choice(tmp_path):
    """ladder.json of a run started when the decoys were a flag (cooccur_decoys) reads as the choice it
    became: continued with it, the run goes on; with another, it is refused naming the setting."""
    s = ladder.settings_for("tiny")
    for flag, docs in ((True, "decoys"), (False, "plain")):
        out = tmp_path / docs
        ladder.Run(out, "tiny", ladder.dataclasses.replace(s, cooccur_docs=docs), log=lambda m: None)
        state = json.loads((out / "ladder.json").read_text())
        state["settings"]["cooccur_decoys"] = state["settings"].pop("cooccur_docs") == "decoys"
        assert state["settings"]["cooccur_decoys"] is flag
        (out / "ladder.json").write_text(json.dumps(state))
        ladder.Run(out, "tiny", ladder.dataclasses.replace(s, cooccur_docs=docs), log=lambda m: None)
        with pytest.raises(ladder.LadderError, match=f"ladder.json: this run was started with other settings "
                           f"\\(--cooccur-docs {docs}\\)"):
            ladder.Run(out, "tiny", ladder.dataclasses.replace(s, cooccur_docs="split"), log=lambda m: None)


def test_a_run_started_before_a_setting_was_added_continues_with_its_preset_s_value(tmp_path):
    """A setting missing from ladder.json reads as BEFORE_ADDED says the code did before it (the
    fine-tune's order; no fewest steps, as micro's 1), else as the run's preset sets it now (micro's
    batch size 8, not the default's 16)."""
    s = ladder.settings_for("micro")
    ladder.Run(tmp_path / "run", "micro", s, log=lambda m: None)
    state = json.loads((tmp_path / "run" / "ladder.json").read_text())
    for key in ("lora_min_steps", "ft_order", "batch_size"):
        del state["settings"][key]
    (tmp_path / "run" / "ladder.json").write_text(json.dumps(state))
    with pytest.raises(ladder.LadderError, match=r"this run was started with other settings \(--ft-order curriculum\)"):
        ladder.Run(tmp_path / "run", "micro", s, log=lambda m: None)
    ladder.Run(tmp_path / "run", "micro", ladder.dataclasses.replace(s, ft_order="curriculum"), log=lambda m: None)
    # warmup was a twentieth of an adapter's steps then, which no value of --lora-warmup gives
    del state["settings"]["lora_warmup"]
    (tmp_path / "run" / "ladder.json").write_text(json.dumps(state))
    with pytest.raises(ladder.LadderError, match=r"other settings \(--ft-order curriculum, --lora-warmup \(before the "
                                                 r"setting: a twentieth of an adapter's steps\)\)"):
        ladder.Run(tmp_path / "run", "micro", s, log=lambda m: None)


def test_world_per_seed_gives_the_kth_seed_the_world_seed_plus_k(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(ladder, "WORLDS", tmp_path / "worlds")
    monkeypatch.setattr(ladder, "run_ladder", lambda run: seen.append((run.s.seed, run.s.world_seed)) or {})
    monkeypatch.setattr(ladder, "summary_lines", lambda report: [])
    monkeypatch.setattr(ladder, "control_lines", lambda *a: [])
    monkeypatch.setattr(ladder, "aggregate_seeds", lambda reports, out, worlds: seen.append(worlds) or {})
    monkeypatch.setattr(ladder, "write_results", lambda *a, **k: None)
    args = ["--preset", "micro", "--seeds", "3", "--seed", "4", "--world-seed", "10", "--out", str(tmp_path / "r")]
    ladder.main(args + ["--world-per-seed"])
    assert seen == [(4, 10), (5, 11), (6, 12), True]
    seen.clear()
    ladder.main(args[:-1] + [str(tmp_path / "one-world")])
    assert seen == [(4, 10), (5, 10), (6, 10), False]


@pytest.mark.parametrize("extra", [["--seeds", "1"], ["--seeds", "2", "--units", "data/examples"]])
def test_world_per_seed_without_seeds_on_the_built_in_world_is_refused(extra, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        ladder.main(["--preset", "micro", "--world-per-seed", "--out", str(tmp_path / "r")] + extra)
    assert e.value.code == 2 and "--world-per-seed goes with --seeds N" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_results_sum_the_flops_of_every_stage_any_seed_ran(tmp_path, monkeypatch):
    """A seed whose gate rejected every unit ran no fine-tune or scratch run: the others' still count."""
    seen = {}
    monkeypatch.setattr(ladder, "render_results", lambda run, **k: seen.update(run) or "")
    reports = [{"stage_seconds": {"base": 1.0}, "training_flops": {"base": 1e12, "adapters": 1e11}},
               {"stage_seconds": {"base": 2.0}, "training_flops": {"base": 1e12, "adapters": 2e11, "finetune": 5e12,
                                                                    "scratch": 3e13}}]
    ladder.write_results(tmp_path, [], "cpu", {}, agg={}, reports=reports)
    assert seen["training_flops"] == {"base": 2e12, "adapters": 3e11, "finetune": 5e12, "scratch": 3e13}
    assert seen["seeds"] == 2 and seen["seconds"] == 3.0


def test_results_record_a_command_a_shell_reads_back_as_it_ran(tmp_path, monkeypatch):
    """An --out with a space is one word of the recorded command, quoted as a shell reads it."""
    seen = {}
    monkeypatch.setattr(ladder, "render_results", lambda run, **k: seen.update(run) or "")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    argv = ["--preset", "micro", "--out", "runs/r 2"]
    ladder.write_results(tmp_path, argv, "cpu", {}, report={"stage_seconds": {}, "training_flops": {}})
    assert seen["title"] == "`ladder.py --preset micro --out 'runs/r 2'`"
    assert shlex.split(seen["command"]) == ["OMP_NUM_THREADS=1", "python", "ladder.py"] + argv


def test_a_curriculum_fine_tune_spreads_one_curriculum_over_its_whole_budget(tmp_path, monkeypatch):
    """Without a token budget the stream's curriculum is one epoch, served over and over (replay in effect)."""
    run = ladder.Run(tmp_path / "run", "micro", ladder.settings_for("micro"), write_units(tmp_path / "units"),
                     log=lambda line: None)
    ladder.stage_corpus(run)
    for u in run.corpus.knowledge_units():
        run.corpus.passport.append("unit_verified", unit=u, passed=True)
    run.corpus.refresh()
    seen = []
    monkeypatch.setattr(ladder.Run, "train", lambda self, d, **kw: seen.append(kw))
    for order in ("curriculum", "shuffled"):
        run.s = ladder.settings_for("micro", ft_order=order)
        ladder.stage_finetune(run)
    curriculum_kw, shuffled_kw = seen
    assert curriculum_kw["token_budget"] == curriculum_kw["max_steps"] * run.tokens_per_step() > 0
    assert shuffled_kw["token_budget"] is None and shuffled_kw["max_steps"] == curriculum_kw["max_steps"]


def test_a_sigterm_ends_the_ladder_as_ctrl_c_does_keeping_its_stage_s_time(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, str(ROOT / "ladder.py"), "--preset", "micro", "--out", str(out),
                             "--units", str(write_units(tmp_path / "units"))], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    for line in proc.stdout:
        if line.startswith("[2/6]"):  # the base's pretraining has begun
            proc.send_signal(signal.SIGTERM)
            break
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err.strip().startswith("interrupted: run the same command"), err
    assert "base" in json.loads((out / "stage_seconds.json").read_text())


def test_seeds_into_a_run_of_one_seed_or_one_seed_into_runs_across_seeds_is_refused(finished, tmp_path, capsys):
    # each kind writes its report to out/report: --seeds 2 into a finished run wrote seed-N runs beside it and
    # replaced its report, and the run again put its own back
    tmp, _ = finished
    before = snapshot(tmp / "run")
    r = run_main(ladder.main, ["--preset", "micro", "--seeds", "2", "--out", tmp / "run", "--units", tmp / "units"],
                 capsys)
    assert (r.returncode, r.stderr) == (2, f"error: --out {tmp / 'run'}: holds one run (its ladder.json), whose report "
                                           "--seeds 2 would replace; use another --out\n")
    assert snapshot(tmp / "run") == before and not list((tmp / "run").glob("seed-*"))
    across = tmp_path / "across"
    for seed in (3, 4):  # what --seeds 2 --seed 3 leaves: a run in each seed's directory
        (across / f"seed-{seed}").mkdir(parents=True)
        (across / f"seed-{seed}" / "ladder.json").write_text("{}\n")
    before = snapshot(across)
    r = run_main(ladder.main, ["--preset", "micro", "--out", across, "--units", tmp / "units"], capsys)
    assert (r.returncode, r.stderr) == (2, f"error: --out {across}: holds runs across seeds (seed-3, seed-4), whose "
                                           "report one run would replace; use another --out, or continue them with "
                                           "--seeds\n")
    assert snapshot(across) == before and not (across / "corpus").exists()


def test_a_probe_too_long_for_the_block_is_refused_with_the_corpus_before_any_training(tmp_path, capsys):
    # it was refused by the compare stage, after the base, every adapter and the scratch runs had trained
    units = write_units(tmp_path / "units")
    long = " ".join(["the very long answer"] * 30)
    with open(units / "facts-01.jsonl", "a") as f:
        f.write(json.dumps({"probe": "Q: What is the longest answer? A:", "answer": long, "choices": [long, "red"],
                            "type": "recall"}) + "\n")
    r = run_main(ladder.main, ["--preset", "micro", "--out", tmp_path / "run", "--units", units], capsys)
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
    assert r.stderr.startswith("error: unit facts-01, probe 'Q: What is the longest answer? A:': a choice of ")
    assert r.stderr.endswith(" tokens does not fit block_size 64 of model --preset micro (--block-size)\n")
    assert not (tmp_path / "run").exists()  # a first corpus refused: nothing of the run is left


def test_a_stage_s_time_so_far_is_on_disk_while_it_runs(tmp_path, monkeypatch):
    """A kill -9 runs no finally: the time a stage has run is written at its log lines, every
    RECORD_EVERY seconds, so that a resumed run's stage_seconds.json loses only what followed the last."""
    from types import SimpleNamespace
    clock, seen = [1000.0], {}
    monkeypatch.setattr(ladder.time, "time", lambda: clock[0])

    def base(run):
        for _ in range(5):  # five lines 4 s apart: the time is written at 12 s (the third line past 10 s)
            clock[0] += 4
            run.log("    step")
        seen["base"] = json.loads((tmp_path / "stage_seconds.json").read_text())

    def compare(run, *a):
        (tmp_path / "report").mkdir()
        return {"models": {"base": {"flops": 1.0}}}

    for name, fn in (("stage_corpus", lambda run: None), ("stage_base", base), ("stage_grow", lambda run: ([], 0)),
                     ("stage_finetune", lambda run: False), ("stage_scratch", lambda run, f: None),
                     ("stage_compare", compare)):
        monkeypatch.setattr(ladder, name, fn)
    log = lambda m: None  # noqa: E731
    run = SimpleNamespace(out=tmp_path, stage_seconds=lambda: {"base": 100.0}, log=log, before=None,
                          preset="micro", s=ladder.settings_for("micro"))
    report = ladder.run_ladder(run)
    assert seen["base"] == {"corpus": 0.0, "base": 112.0}  # the earlier invocations' 100 s, and 12 s of this one's
    assert report["stage_seconds"]["base"] == 120.0 and run.log is log  # the run's own log put back
