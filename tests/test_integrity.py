"""A damaged weight file is never used: checkpoints, adapters and training states carry a sha256
of their content, checked on every load; writes are atomic under a full disk and a SIGKILL."""

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import train  # noqa: E402
from common import atomic_write_bytes, remove_orphans  # noqa: E402
from in_process import run_main  # noqa: E402
from lora import AdapterError, LoRAConfig, load_adapter, lora_layers, save_adapter  # noqa: E402
from test_lora import with_trained_adapter as trained_adapter  # noqa: E402
from test_train import killed_at  # noqa: E402
from model import GPT, GPTConfig, CheckpointError, base_state_dict, fingerprint, load_checkpoint, read_tensors, \
    save_checkpoint, save_tensors  # noqa: E402

MICRO = GPTConfig.preset("micro")


def micro_model(seed=0):
    torch.manual_seed(seed)
    return GPT(MICRO)


def with_trained_adapter(model):
    """An attached r=4 adapter with random non-zero A and B, as if trained."""
    return trained_adapter(model, LoRAConfig(r=4))


def flip_byte(file, offset=-5):
    """Flip one bit of the byte at `offset` (from the end when negative): what a bad disk does."""
    data = bytearray(Path(file).read_bytes())
    data[offset] ^= 0x01
    Path(file).write_bytes(bytes(data))


@pytest.fixture
def run(capsys):
    """`python SCRIPT ARGS...` (model.py or lora.py) in this process, its result as subprocess.run gives it."""
    import lora
    import model
    scripts = {"model.py": model.main, "lora.py": lora.main}
    return lambda script, *args: run_main(scripts[script], args, capsys)


def assert_one_line_error(r, name):
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert f"{name}: damaged: " in lines[0], r.stderr  # the file's own verdict: tmp_path's name may say "damaged"


# ----------------------------------------------------------------------------- a flipped byte

def test_checkpoint_with_a_flipped_byte_is_refused_as_damaged(tmp_path):
    file = save_checkpoint(micro_model(), tmp_path / "ckpt", {"mode": "pretrain"})
    flip_byte(file)
    with pytest.raises(CheckpointError, match=r"model\.safetensors: damaged: its content does not match the sha256"):
        load_checkpoint(tmp_path / "ckpt")


def test_adapter_with_a_flipped_byte_is_refused_as_damaged(tmp_path):
    file = save_adapter(with_trained_adapter(micro_model()), tmp_path / "ad")
    flip_byte(file)
    model = micro_model()
    with pytest.raises(AdapterError, match=r"adapter\.safetensors: damaged"):
        load_adapter(model, file)
    assert not lora_layers(model)


def test_training_state_with_a_flipped_byte_is_refused_as_damaged(tmp_path):
    model = micro_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    _, loss = model(torch.zeros(1, 8, dtype=torch.long), torch.ones(1, 8, dtype=torch.long))
    loss.backward()
    optimizer.step()  # so that the state holds moments and a step count
    file = tmp_path / "state.safetensors"
    train.save_state(file, train.TrainConfig(), model, optimizer, None, step=1, tokens=8, seconds=0.1,
                     cursor={"batch": 3})
    def load():
        fresh = micro_model()
        return train.load_state(file, train.TrainConfig(), fresh, torch.optim.AdamW(fresh.parameters()), None,
                                train.TokenFileStream.__new__(train.TokenFileStream))

    assert load() == (1, 8, 0.1, {})  # intact: loads
    flip_byte(file)
    with pytest.raises(CheckpointError, match=r"state\.safetensors: damaged"):
        load()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.int64])
def test_a_flipped_byte_in_a_tensor_of_any_dtype_is_refused(tmp_path, dtype):
    file = tmp_path / "t.safetensors"
    save_tensors({"a": torch.arange(64).to(dtype), "b": torch.ones(3, 5, dtype=dtype)}, file)
    assert torch.equal(read_tensors(file)[0]["b"], torch.ones(3, 5, dtype=dtype))
    flip_byte(file, -1)
    with pytest.raises(CheckpointError, match="damaged"):
        read_tensors(file)


def test_a_changed_metadata_value_is_refused_as_damaged(tmp_path):
    file = save_checkpoint(micro_model(), tmp_path, {"mode": "pretrain"})
    data = file.read_bytes()
    assert data.count(b"pretrain") == 1
    file.write_bytes(data.replace(b"pretrain", b"pretraiN"))  # still valid JSON: only the hash can tell
    with pytest.raises(CheckpointError, match="damaged"):
        load_checkpoint(file)


def test_every_one_bit_flip_in_the_header_is_refused(tmp_path):
    """Names, dtypes, shapes, offsets, metadata and the hash itself: no flipped bit in the header
    lets the file load. A flip in the hash key's own name once made a file read as unhashed."""
    file = tmp_path / "t.safetensors"
    save_tensors({"w": torch.ones(2, 3)}, file, {"mode": "pretrain"})
    intact = file.read_bytes()
    head = 8 + int.from_bytes(intact[:8], "little")
    loaded = []
    for offset in range(head):
        for bit in (0x01, 0x20):
            data = bytearray(intact)
            data[offset] ^= bit
            file.write_bytes(bytes(data))
            try:
                read_tensors(file)
                loaded.append((offset, bit, bytes(data[max(0, offset - 8):offset + 8])))
            except CheckpointError:
                pass
    assert loaded == []


def test_a_hash_key_damaged_in_several_characters_is_refused_not_read_as_unhashed(tmp_path):
    file = tmp_path / "t.safetensors"
    save_tensors({"w": torch.ones(2, 3)}, file, {"mode": "pretrain"})
    file.write_bytes(file.read_bytes().replace(b"content_sha256", b"content_sha2xx"))
    with pytest.raises(CheckpointError, match="its header holds 'content_sha2xx' where the content sha256 belongs"):
        read_tensors(file)


def test_cli_export_hf_of_a_damaged_checkpoint_exits_2_with_one_line(tmp_path, run):
    file = save_checkpoint(micro_model(), tmp_path / "ckpt", {})
    flip_byte(file)
    r = run("model.py", "--export-hf", tmp_path / "ckpt", "--out", tmp_path / "hf")
    assert_one_line_error(r, "model.safetensors")
    assert not (tmp_path / "hf").exists()


def test_cli_merge_of_a_damaged_adapter_exits_2_with_one_line(tmp_path, run):
    save_checkpoint(micro_model(), tmp_path / "base", {})
    file = save_adapter(with_trained_adapter(micro_model()), tmp_path / "ad")
    flip_byte(file)
    r = run("lora.py", "--checkpoint", tmp_path / "base", "--adapter", file, "--out", tmp_path / "merged")
    assert_one_line_error(r, "adapter.safetensors")
    assert not (tmp_path / "merged").exists()


def test_cli_merge_onto_a_damaged_checkpoint_exits_2_with_one_line(tmp_path, run):
    base = save_checkpoint(micro_model(), tmp_path / "base", {})
    save_adapter(with_trained_adapter(micro_model()), tmp_path / "ad")
    flip_byte(base, -100)
    r = run("lora.py", "--checkpoint", tmp_path / "base", "--adapter", tmp_path / "ad", "--out", tmp_path / "merged")
    assert_one_line_error(r, "model.safetensors")
    assert not (tmp_path / "merged").exists()


# ----------------------------------------------------------------------------- files written before hashing

def test_a_file_without_hash_loads_with_one_notice_per_file(tmp_path, capsys):
    model = micro_model()
    file = tmp_path / "model.safetensors"
    old_header = {"config": json.dumps(MICRO.to_dict()), "meta": json.dumps({"mode": "pretrain"})}
    save_file({k: v.contiguous() for k, v in base_state_dict(model).items()}, str(file), metadata=old_header)
    loaded, meta = load_checkpoint(file)
    assert fingerprint(loaded) == fingerprint(model) and meta == {"mode": "pretrain"}
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("notice: ") and str(file) in lines[0]
    assert "no content sha256" in lines[0]
    load_checkpoint(file)
    assert capsys.readouterr().err == ""  # once per file


def test_a_rewritten_file_carries_a_fresh_hash_and_loads_silently(tmp_path, capsys):
    file = save_checkpoint(micro_model(), tmp_path, {"mode": "pretrain"})
    tensors, header = read_tensors(file)
    assert "content_sha256" not in header  # the hash is the file's own, never passed on
    tensors["transformer.ln_f.bias"] += 1.0
    save_tensors(tensors, file, header)
    assert torch.equal(load_checkpoint(file)[0].transformer.ln_f.bias, torch.ones(MICRO.n_embd))
    assert capsys.readouterr().err == ""


# ----------------------------------------------------------------------------- full disk and SIGKILL

FULL_DISK = """
import resource, signal, sys, torch
sys.path.insert(0, {root!r})
from model import GPT, GPTConfig, save_checkpoint
torch.manual_seed(1)
model = GPT(GPTConfig.preset("micro"))
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, as on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
save_checkpoint(model, {path!r}, {{"mode": "second"}})
"""


def test_a_full_disk_while_writing_a_checkpoint_leaves_the_previous_one_and_no_temp_file(tmp_path):
    file = save_checkpoint(micro_model(), tmp_path / "ckpt", {"mode": "first"})
    before = file.read_bytes()
    script = FULL_DISK.format(root=str(ROOT), limit=len(before) // 2, path=str(tmp_path / "ckpt"))
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "too large" in r.stderr.lower(), r.stderr
    assert file.read_bytes() == before
    model, meta = load_checkpoint(tmp_path / "ckpt")
    assert meta["mode"] == "first" and fingerprint(model) == fingerprint(micro_model())
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["model.safetensors"]


def test_sigkill_during_a_merge_then_a_rerun_writes_the_uninterrupted_merge_byte_for_byte(tmp_path, run):
    """The killed merge is a real process; the uninterrupted one and the rerun run in this one."""
    config = GPTConfig(vocab_size=2048, block_size=128, n_layer=6, n_head=4, n_embd=256)
    torch.manual_seed(0)
    save_checkpoint(GPT(config), tmp_path / "base", {"tokenizer_hash": "tok"})
    torch.manual_seed(0)
    save_adapter(with_trained_adapter(GPT(config)), tmp_path / "ad", {"tokenizer_hash": "tok"})
    merge = ("lora.py", "--checkpoint", tmp_path / "base", "--adapter", tmp_path / "ad", "--out")
    clean = run(*merge, tmp_path / "clean")
    assert clean.returncode == 0, clean.stderr
    expected = (tmp_path / "clean" / "model.safetensors").read_bytes()

    # killed in the middle of writing its merged model: as the 10th tensor is about to be written
    out = tmp_path / "killed"
    killed = killed_at("lora.py", merge[1:] + (out,), "model._tensor_bytes", "caller == '_write_safetensors'", nth=10)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    final = out / "model.safetensors"
    assert not final.exists()  # never a partial file under the real name
    [tmp] = list(out.iterdir())
    assert tmp.name.startswith(".model.safetensors.tmp-") and 0 < tmp.stat().st_size < len(expected)

    rerun = run(*merge, out)
    assert rerun.returncode == 0, rerun.stderr
    assert final.read_bytes() == expected
    load_checkpoint(out)
    assert [p.name for p in out.iterdir()] == ["model.safetensors"]  # the killed writer's temporary is gone


def test_a_write_removes_temporaries_of_killed_writers_and_keeps_those_of_running_ones(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        for pid in (dead.pid, alive.pid):
            (tmp_path / f".model.safetensors.tmp-{pid}").write_bytes(b"partial")
        (tmp_path / f".other.safetensors.tmp-{dead.pid}").write_bytes(b"another file's")
        for pid in (dead.pid, alive.pid):  # a folder staged whole (prepare.py's units) goes the same way
            (tmp_path / f".units.tmp-{pid}").mkdir()
            (tmp_path / f".units.tmp-{pid}" / "atoms-00.jsonl").write_text("partial")
        atomic_write_bytes(tmp_path / "model.safetensors", b"whole")
        remove_orphans(tmp_path / "units")
        assert sorted(p.name for p in tmp_path.iterdir()) == [f".model.safetensors.tmp-{alive.pid}",
                                                              f".other.safetensors.tmp-{dead.pid}",
                                                              f".units.tmp-{alive.pid}", "model.safetensors"]
    finally:
        alive.kill()


def test_an_output_that_cannot_be_made_where_it_is_named_is_refused_naming_the_path(tmp_path):
    from common import check_writable
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    for path, kind, said in ((a_file, "directory", f"{a_file}: is a file, where the output directory"),
                             (a_file / "sub" / "x", "directory", f"{a_file}: is a file, not a directory"),
                             (a_file / "r.md", "file", f"{a_file}: is a file, not a directory"),
                             (tmp_path, "file", f"{tmp_path}: is a directory, where the output file")):
        with pytest.raises(ValueError, match="^" + re.escape(said)):
            check_writable(path, kind)
    assert check_writable(tmp_path / "new" / "dir") == tmp_path / "new" / "dir" and not (tmp_path / "new").exists()
    assert check_writable(a_file, "file") == a_file  # an existing file is overwritten, not refused


def test_an_output_where_this_user_may_not_write_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    import os
    from common import check_writable
    locked = tmp_path / "locked"
    locked.mkdir()
    # root may write anywhere, so the test cannot lock a directory: os.access answers as for another user
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != locked)
    for path, kind in ((locked / "run", "directory"), (locked / "r.md", "file"), (locked, "directory")):
        with pytest.raises(ValueError, match=f"^{re.escape(str(locked))}: not writable by this user"):
            check_writable(path, kind)
    assert check_writable(tmp_path / "free") == tmp_path / "free"


def test_the_current_directory_and_the_root_are_outputs_like_any_other(tmp_path, monkeypatch):
    from common import check_writable
    monkeypatch.chdir(tmp_path)  # "." has no parents to look in: the absolute path has
    assert check_writable(".") == Path(".") and check_writable("report.md", "file") == Path("report.md")
    assert check_writable("/") == Path("/")
