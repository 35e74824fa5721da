"""bench.py: smoke tests only (timings belong in bench.py, never in tests): it runs, prints its table,
writes its rows stamped with the machine, and renders BENCH.md from them."""
import json
import math
import os
import platform
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import bench  # noqa: E402
from in_process import ctrl_c  # noqa: E402
import ladder  # noqa: E402
import machine  # noqa: E402
from model import GPT, GPTConfig  # noqa: E402


def run_bench(*args):
    return subprocess.run([sys.executable, str(ROOT / "bench.py"), "--quick", "--threads", "1", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """One quick bench for the tests that read its output: (completed process, its JSON file)."""
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    r = run_bench("--json", str(out), "--scale-tokens", "200000", "400000")
    assert r.returncode == 0, r.stderr
    return r, out


def cpuinfo_model_name():
    """The first "model name" of /proc/cpuinfo, read here rather than by bench.py; None where there is
    none (no /proc, or a CPU whose cpuinfo has no such line, as on many ARM machines)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return None
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), None)


def rows_by_figure(file):
    return {row["figure"]: row for row in json.loads(file.read_text())["rows"]}


def test_quick_bench_prints_its_table_and_writes_json(quick):
    r, file = quick
    for figure in ("matmul ceiling", "pretrain tokens/s, CPU MFU", "lora / full fine-tune step time",
                   "optimizer state, lora r=8 on all four block linears / full",
                   "optimizer state, lora r=8 on attention only / full", "probe scoring, batched / per choice",
                   "stream tokens/s", "corpus 0.4M tokens: init", "add time per token, 0.4M / 0.2M"):
        assert figure in r.stdout
    rows = json.loads(file.read_text())["rows"]
    assert {"figure", "value", "target", "ok"} <= set(rows[0])
    assert all(row["ok"] is None for row in rows)  # --quick judges nothing: the targets are for the full configs
    capped = rows[-1]  # the large corpus added again, holding no more needles than the small one has
    assert capped["figure"].startswith("add 0.4M holding 0.2M's") and 0 < capped["budget"] < capped["needles"]
    assert capped["peak"] > 0 and capped["seconds"] > 0


def test_quick_bench_stamps_its_json_with_the_machine_versions_commit_and_command(quick):
    _, file = quick
    m = json.loads(file.read_text())["machine"]
    assert datetime.fromisoformat(m["date"]).utcoffset().total_seconds() == 0
    assert isinstance(m["cpu"], str) and m["cpu"].strip() and m["gpu"] is None
    assert m["cpus"] == os.cpu_count()
    assert (m["torch"], m["python"], m["threads"]) == (torch.__version__, platform.python_version(), 1)
    assert m["commit"] == machine.git_commit()
    assert m["command"].startswith("python bench.py --quick --threads 1 --json ")
    assert m["complete"] is True


@pytest.mark.skipif(cpuinfo_model_name() is None, reason='no "model name" line in /proc/cpuinfo')
def test_quick_bench_names_the_cpu_as_proc_cpuinfo_does_and_bench_md_shows_it(quick, tmp_path):
    _, file = quick
    name = cpuinfo_model_name()
    assert name and json.loads(file.read_text())["machine"]["cpu"] == name
    bench.main(["--render", str(file), "--out", str(tmp_path / "BENCH.md")])
    text = (tmp_path / "BENCH.md").read_text()
    assert f"\n## {name}, " in text and f"; {name}, 1 torch threads of {os.cpu_count()} CPUs; " in text


def test_quick_bench_times_a_checkpoint_load_with_and_without_the_content_check(quick):
    _, file = quick
    micro = sum(p.numel() for p in GPT(GPTConfig.preset("micro")).parameters())
    row = rows_by_figure(file)[f"checkpoint load, {micro / 1e6:.2g}M params"]
    assert row["params"] == micro and row["checked_seconds"] > 0 and row["unchecked_seconds"] > 0
    assert row["check_seconds"] == pytest.approx(row["checked_seconds"] - row["unchecked_seconds"])
    assert row["target"] == "+ < 1 s"


def test_quick_bench_times_one_grow_unit_on_the_cpu(quick):
    """The grow unit --cuda times on the small preset runs on micro on the CPU: LoRA, verify, merge."""
    _, file = quick
    rows = rows_by_figure(file)
    parts = [rows[f"micro grow unit: {p}"]["seconds"] for p in ("LoRA training", "verify", "merge")]
    assert all(s > 0 for s in parts)
    assert rows["micro grow unit: total"]["seconds"] == pytest.approx(sum(parts))
    train = rows["micro grow unit: LoRA training"]
    # the ladder's own count: micro's 4 epochs over the unit's own 48% of each step (primitive 0.2, replay 0.4)
    s = ladder.settings_for("micro")
    assert train["steps"] == ladder.adapter_steps(s, train["tokens"], 8 * 64, 0.4) == \
        math.ceil(4 * train["tokens"] / ((1 - 0.2) * (1 - 0.4)) / (8 * 64))
    assert rows["micro grow unit: verify"]["retention_probes"] > 0  # the earlier units were checked too


def test_render_writes_bench_md_with_each_runs_machine_line_and_table(quick, tmp_path):
    _, file = quick
    run = json.loads(file.read_text())
    m, out = run["machine"], tmp_path / "BENCH.md"
    again = tmp_path / "again.json"  # a second run with the same figures
    again.write_bytes(file.read_bytes())
    bench.main(["--render", str(file), str(again), "--out", str(out)])
    text = out.read_text()
    assert text.startswith("# accrete benchmarks") and "interleaved" in text and "best" in text
    ceiling = next(r for r in run["rows"] if r.get("ceiling"))
    line = next(line for line in text.splitlines() if line.startswith(m["date"]))
    assert m["cpu"].strip() and line.startswith(f"{m['date']}; {m['cpu']}, 1 torch threads of {m['cpus']} CPUs; ")
    for part in (f"{ceiling['value']} ({ceiling['ceiling']})", f"torch {m['torch']}",
                 f"commit {m['commit']}", m["command"]):
        assert part in line
    assert text.count(line) == 2  # one section per file given
    for row in run["rows"]:
        assert f"| {row['figure']} | {row['value']} | {row['target']} |" in text


def test_render_says_when_a_run_stopped_before_its_end(quick, tmp_path):
    _, file = quick
    run = json.loads(file.read_text())
    run["machine"]["complete"] = False  # as a run killed by its time limit leaves it
    (tmp_path / "stopped.json").write_text(json.dumps(run))
    bench.main(["--render", str(tmp_path / "stopped.json"), "--out", str(tmp_path / "BENCH.md")])
    assert "stopped before its end" in (tmp_path / "BENCH.md").read_text()


def test_render_refuses_a_file_that_is_not_a_stamped_run_with_one_line(tmp_path, capsys):
    old = tmp_path / "old.json"
    old.write_text(json.dumps([{"figure": "x", "value": "1", "target": "", "ok": None}]))  # rows without a stamp
    with pytest.raises(SystemExit) as e:
        bench.main(["--render", str(old), "--out", str(tmp_path / "BENCH.md")])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and "old.json" in err[0] and "machine stamp" in err[0]
    assert not (tmp_path / "BENCH.md").exists()


STAMP = {"date": "2026-12-04T00:00:00+00:00", "cpu": "Some CPU"}


def test_render_refuses_an_out_that_is_one_of_its_runs_before_writing(tmp_path, capsys, monkeypatch):
    """--out the run's own JSON wrote BENCH.md's text over the measurements it was rendered from."""
    run, other = tmp_path / "run.json", tmp_path / "other.json"
    for f in (run, other):
        f.write_text(json.dumps({"machine": STAMP, "rows": [{"figure": "x", "value": "1", "ok": None}]}))
    before = run.read_bytes()
    monkeypatch.chdir(tmp_path)  # the same file however it is spelled
    with pytest.raises(SystemExit) as e:
        bench.main(["--render", str(other), "run.json", "--out", str(run)])
    assert e.value.code == 2
    assert capsys.readouterr().err == f"error: --out {run} would overwrite run.json, which this command reads\n"
    assert run.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["other.json", "run.json"]


def test_render_refuses_a_run_given_twice_an_out_it_did_not_write_and_out_without_render(tmp_path, capsys,
                                                                                          monkeypatch):
    run, log = tmp_path / "run.json", tmp_path / "notes.md"
    monkeypatch.chdir(tmp_path)  # the same run however it is spelled
    run.write_text(json.dumps({"machine": STAMP, "rows": [{"figure": "x", "value": "1", "ok": None}]}))
    log.write_text("my notes\n")
    for args, says in ((["--render", str(run), "run.json", "--out", str(tmp_path / "B.md")],
                        f"--render run.json: the same run as {run}; give each run once (one section each)"),
                       (["--render", str(run), "--out", str(log)],
                        f'{log}: not a bench page (its first line is not "# accrete benchmarks"), so it is not written '
                        "over; give a new file or a BENCH.md this command wrote"),
                       (["--quick", "--out", str(tmp_path / "B.md")],
                        "--out goes with --render; the rows measured are kept with --json FILE"),
                       (["--render", str(run), "--ladder", "--json", "x.json"],
                        "--render measures nothing: --ladder, --json would do nothing with it"),
                       (["--scale-100m", "--scale-tokens", "60000"],
                        "--scale-100m with --scale-tokens: the sizes are those given; add 100000000 to them instead")):
        with pytest.raises(SystemExit) as e:
            bench.main(args)
        assert (e.value.code, capsys.readouterr().err) == (2, f"error: {says}\n")
    assert log.read_text() == "my notes\n" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.md", "run.json"]
    bench.main(["--render", str(run), "--out", str(tmp_path / "B.md")])
    bench.main(["--render", str(run), "--out", str(tmp_path / "B.md")])  # a page it wrote: replaced
    assert (tmp_path / "B.md").read_text().startswith("# accrete benchmarks")


@pytest.mark.parametrize("args", [["--render", "RUN", "--out", "OUT"], ["--quick", "--json", "OUT"]],
                         ids=["render", "measure"])
def test_ctrl_c_ends_in_one_line_saying_how_to_go_on(args, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(bench, "read_run", ctrl_c)
    monkeypatch.setattr(bench, "run_benches", ctrl_c)
    run = tmp_path / "run.json"
    run.write_text(json.dumps({"machine": STAMP, "rows": []}))
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        bench.main([a.replace("RUN", str(run)).replace("OUT", str(tmp_path / "out")) for a in args])
    err = capsys.readouterr().err
    assert e.value.code == 130 and err.startswith("interrupted: ") and len(err.splitlines()) == 1, err
    assert "run the same command again" in err
    if "--json" in args:  # the rows measured before the stop stay, the run marked unfinished
        assert json.loads((tmp_path / "out").read_text())["machine"]["complete"] is False


@pytest.mark.parametrize("content, says", [
    (b"\xff\xfe not text", "not JSON"),
    (json.dumps({"machine": STAMP, "rows": [{"value": "1", "ok": None}]}).encode(), "row 1 is not a figure"),
    (json.dumps({"machine": STAMP, "rows": [1]}).encode(), "row 1 is not a figure"),
    (json.dumps({"machine": STAMP, "rows": [{"figure": "x", "value": "1", "ok": "yes"}]}).encode(), "row 1"),
    (json.dumps({"machine": dict(STAMP, date=5), "rows": []}).encode(), "date is not text")])
def test_render_refuses_a_damaged_run_with_one_line(content, says, tmp_path, capsys):
    (tmp_path / "run.json").write_bytes(content)
    with pytest.raises(SystemExit) as e:
        bench.main(["--render", str(tmp_path / "run.json"), "--out", str(tmp_path / "BENCH.md")])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and "run.json" in err[0] and says in err[0]
    assert not (tmp_path / "BENCH.md").exists()


@pytest.mark.parametrize("args, says", [
    (["--render", "RUN", "--out", "DIR"], "--out DIR: a directory"),
    (["--quick", "--json", "DIR"], "--json DIR: a directory"),
    (["--quick", "--json", "RUN/bench.json"], "--json RUN/bench.json: cannot write it"),
    (["--quick", "--scale-tokens", "60000", "60000"], "--scale-tokens 60000 60000: a size given twice"),
    (["--cuda", "--cuda-only", "--ladder"], "--cuda-only measures the GPU figures alone: leave out --ladder"),
    (["--repeats", "0"], "argument --repeats: '0': give a whole number of at least 1"),
    (["--threads", "-1"], "argument --threads: '-1': give a whole number of at least 1"),
    (["--scale-tokens", "10"], "argument --scale-tokens: '10': give a whole number of at least 50000")])
def test_bad_options_are_refused_before_anything_is_measured(args, says, tmp_path, capsys):
    run = tmp_path / "run.json"
    run.write_text(json.dumps({"machine": STAMP, "rows": []}))
    argv = [a.replace("DIR", str(tmp_path)).replace("RUN", str(run)) for a in args]
    with pytest.raises(SystemExit) as e:
        bench.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and says.replace("DIR", str(tmp_path)).replace("RUN", str(run)) in err[-1]
    assert "s] " not in "".join(err)  # no figure was measured: a measured one prints "[  0.1s] figure: value"


def test_the_ladder_s_time_is_judged_at_the_slowest_ceiling_of_its_aim():
    table = bench.Table()
    # 17.2 min at a 192 GFLOP/s ceiling: 20.6 min where the ceiling is 160, 30.0 where it is 110
    bench.ladder_rows(table, "tiny", 1032.0, 1.11e14, (190e9, 194e9), 2)
    run, aim = table.rows
    assert run["value"] == ("17.2 min; 1.11e+14 training FLOPs at 108 GFLOP/s over the run, 56% of the ceiling "
                            "(192 GFLOP/s, 2 threads)")
    assert "ceiling" not in run and run["ceiling_flops"] == [190e9, 194e9]  # a "ceiling" row is one BENCH.md's machine line names
    assert (aim["figure"], aim["value"], aim["target"], aim["ok"]) == \
        ("ladder.py --preset tiny, projected to a 110-160 GFLOP/s ceiling", "20.6-30.0 min", "<= 15 min", False)
    bench.ladder_rows(table, "tiny", 540.0, 1.11e14, (180e9, 180e9), 2)  # 9.0 min at 180: 10.1-14.7 min
    assert (table.rows[-1]["value"], table.rows[-1]["ok"]) == ("10.1-14.7 min", True)
    quick = bench.Table(judge=False)
    bench.ladder_rows(quick, "micro", 60.0, 1e12, (180e9, 180e9), 1)
    assert (quick.rows[-1]["target"], quick.rows[-1]["ok"]) == ("", None)


def fake_ladder(returncode, stderr=""):
    """A subprocess.run that records what it was asked to run and, like ladder.py, leaves a report."""
    calls = []

    def run(cmd, **kw):
        calls.append((cmd, kw))
        if returncode == 0:
            out = Path(cmd[cmd.index("--out") + 1]) / "report"
            out.mkdir(parents=True)
            (out / "report.json").write_text(json.dumps({"training_flops": {"base": 1e12, "scratch": 2e12}}))
        return subprocess.CompletedProcess(cmd, returncode, "", stderr)
    return run, calls


@pytest.mark.parametrize("threads", [None, 1])
def test_the_ladder_runs_on_the_cpu_on_the_aim_s_two_threads_unless_told_and_its_report_gives_the_flops(
        threads, tmp_path, monkeypatch):
    run, calls = fake_ladder(0)
    monkeypatch.setattr(bench.subprocess, "run", run)
    seen = []
    monkeypatch.setattr(bench, "ceiling", lambda: seen.append(torch.get_num_threads()) or 1e11)
    own = torch.get_num_threads()
    table = bench.Table()
    bench.bench_ladder(table, tmp_path, quick=False, threads=threads)
    (cmd, kw), = calls
    assert cmd[1:] == [str(ROOT / "ladder.py"), "--preset", "tiny", "--device", "cpu", "--out", str(tmp_path / "ladder")]
    assert kw["env"]["OMP_NUM_THREADS"] == str(threads or 2) and seen == [threads or 2] * 2
    assert torch.get_num_threads() == own  # bench's own threads, as they were
    assert table.rows[0]["flops"] == 3e12 and table.rows[0]["threads"] == (threads or 2)


def test_a_ladder_that_fails_under_bench_is_one_error_naming_it_and_no_figure(tmp_path, monkeypatch):
    run, _ = fake_ladder(2, "[1/6] corpus\nerror: the built-in world: no space left\n")
    monkeypatch.setattr(bench.subprocess, "run", run)
    monkeypatch.setattr(bench, "ceiling", lambda: 1e11)
    table = bench.Table()
    with pytest.raises(bench.BenchError, match=r"^ladder.py --preset micro failed \(exit 2\): error: the built-in "
                                               r"world: no space left$"):
        bench.bench_ladder(table, tmp_path, quick=True)
    assert table.rows == []


def gpu_check(tmp_path, commands):
    """gpu_check.sh's functions, sourced with $OUT in tmp_path (no step of its own runs), then commands."""
    return subprocess.run(["bash", "-c", f"OUT={tmp_path} source {ROOT / 'gpu_check.sh'} && {commands}"],
                          capture_output=True, text=True, timeout=60)


def test_gpu_check_keeps_the_output_of_a_step_cut_by_its_limit(tmp_path):
    # a 3 s limit: the step's echo must come before it on a machine busy with other work
    r = gpu_check(tmp_path, "step cut 3 no_skips bash -c 'echo test_a PASSED; sleep 30'; echo failed=$FAILED")
    log = (tmp_path / "gpu_check.log").read_text()
    assert "test_a PASSED" in log and "=== cut: TIMED OUT after 3s" in log and "failed=1" in r.stdout


def test_gpu_check_copies_and_deletes_a_smoke_ladder_cut_by_its_limit(tmp_path):
    """A step cut by its limit is killed with its process group: the smoke ladder's pages are copied
    and its scratch directory deleted by the script's own shell, after the step."""
    fake = tmp_path / "python"  # writes the report the ladder would, then outlives the step's limit
    fake.write_text('#!/bin/bash\nout=${@: -1}\nmkdir -p "$out/report" && echo table > "$out/report/report.md"\n'
                    "sleep 30\n")
    fake.chmod(0o755)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    r = gpu_check(tmp_path, f'OUT={tmp_path}; PYTHON={fake}; step "smoke ladder" 3 smoke {scratch}; '
                            f"smoke_out {scratch}; echo failed=$FAILED")
    assert "failed=1" in r.stdout, r.stdout + r.stderr
    assert (tmp_path / "smoke-report.md").read_text() == "table\n" and not scratch.exists()


@pytest.mark.parametrize("output, code, rc", [("3 passed", 0, 0), ("2 passed, 1 skipped", 0, 1), ("1 failed", 3, 3)])
def test_gpu_check_fails_a_test_step_that_skipped_a_test(output, code, rc, tmp_path):
    r = gpu_check(tmp_path, f"no_skips bash -c 'echo \"{output}\"; exit {code}'; echo rc=$?")
    assert r.stdout.strip().endswith(f"rc={rc}") and output in r.stdout
    assert ("its check was not made" in r.stdout) == ("skipped" in output)


def git(repo, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                   capture_output=True)


def test_git_commit_is_the_short_head_and_dirty_when_a_tracked_file_changed(tmp_path):
    git(tmp_path, "init", "-q")
    (tmp_path / "a.txt").write_text("a")
    git(tmp_path, "add", "a.txt")
    git(tmp_path, "commit", "-qm", "a")
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tmp_path, capture_output=True,
                          text=True).stdout.strip()
    (tmp_path / "untracked.txt").write_text("b")  # untracked files are not the code that ran
    assert machine.git_commit(tmp_path) == head
    (tmp_path / "a.txt").write_text("changed")
    assert machine.git_commit(tmp_path) == head + "+dirty"


def test_git_commit_is_unknown_outside_a_checkout_unless_the_sender_named_it(tmp_path, monkeypatch):
    monkeypatch.delenv("ACCRETE_COMMIT", raising=False)
    assert machine.git_commit(tmp_path) == "unknown"
    monkeypatch.setenv("ACCRETE_COMMIT", "abc1234")  # a copy of the files, without .git, sent to a GPU machine
    assert machine.git_commit(tmp_path) == "abc1234 (ACCRETE_COMMIT)"


def test_cuda_only_without_cuda_is_refused_with_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        bench.main(["--cuda-only"])
    assert e.value.code == 2 and capsys.readouterr().err.strip() == "error: --cuda-only goes with --cuda"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_quick_bench_runs_on_cuda(tmp_path):
    r = run_bench("--cuda", "--json", str(tmp_path / "gpu.json"))
    assert r.returncode == 0, r.stderr
    assert "CUDA micro compiled tokens/s, MFU (batch 8)" in r.stdout
    rows = rows_by_figure(tmp_path / "gpu.json")
    assert rows["CUDA micro grow unit: total"]["seconds"] > 0
    assert json.loads((tmp_path / "gpu.json").read_text())["machine"]["gpu"] == torch.cuda.get_device_name()


def tiny_model(adapter):
    """A one-block GPT, seeded; with `adapter` a LoRA on it whose B is not zero (from zero, A would get no
    gradient and the test would see only half the adapter train)."""
    import lora
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=16, vocab_size=64))
    if adapter:
        lora.attach(model, lora.LoRAConfig(r=4))
        with torch.no_grad():
            for _, layer in lora.lora_layers(model):
                layer.lora_B.normal_(0, 0.02)
    return model


def trainable(model):
    return torch.cat([p.detach().flatten() for p in model.parameters() if p.requires_grad])


@pytest.mark.parametrize("adapter", [False, True], ids=["full", "lora"])
def test_a_step_with_a_compiled_forward_trains_like_the_eager_one(adapter, monkeypatch):
    """bench's CUDA rows time steps through torch.compile, of the whole model and of a LoRA on it; the
    step must take the compiled module (which has no truth value) and train as the eager model does.
    Run on the CPU with a tiny model, the LoRA through the kernel LoRALinear runs on CUDA."""
    import lora
    monkeypatch.setitem(lora.KERNELS, "cpu", lora.KERNELS["cuda"])
    after = {}
    for compiled in (False, True):
        model = tiny_model(adapter)
        step, _ = bench.train_step(model, torch.device("cpu"), B=2,
                                   compiled=torch.compile(model) if compiled else None)
        step()
        after[compiled] = trainable(model)
    before = trainable(tiny_model(adapter))
    # AdamW's first step moves each weight by about the learning rate (1e-3); the two agree to 1e-4
    # (elements whose gradient is near zero take a sign from rounding, so not to float precision)
    assert (after[False] - before).abs().max() > 5e-4
    assert (after[True] - after[False]).abs().max() < 1e-4


def test_the_merge_bench_and_the_grow_stage_share_writes_the_merged_header(tmp_path):
    import lora
    from model import load_checkpoint, save_checkpoint
    torch.manual_seed(0)
    base = GPT(GPTConfig.preset("micro", vocab_size=64, block_size=32))
    save_checkpoint(base, tmp_path / "base", {"units": ["a"], "tokens": 100, "flops": 600, "step": 50})
    lora.attach(base)
    adapter = lora.save_adapter(base, tmp_path / "ad", {"units": ["b"], "tokens": 20, "flops": 30,
                                                        "tokens_total": 120, "flops_total": 630})
    meta = load_checkpoint(lora.merge_files(tmp_path / "base", adapter, tmp_path / "merged")[0])[1]
    assert (meta["mode"], meta["units"], meta["tokens"], meta["flops"], meta["flops_total"]) == \
        ("merged", ["a", "b"], 20, 30, 630)
    assert "step" not in meta  # the base's step is not the merged model's
