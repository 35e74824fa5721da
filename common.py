"""
The small helpers every accrete module shares, torch-free: a file's sha256, atomic writes (a
crash never leaves a half-written file under the real name), the command lines' way out,
command-line flags made from a dataclass's documented fields, and the corpus's held-out documents
(which the world generator reads too).
"""

import argparse
import contextlib
import dataclasses
import functools
import glob
import hashlib
import numbers
import os
import shutil
import sys
from pathlib import Path

import numpy as np

# GPT-2's tokenizer is fixed by its name: a corpus on it and a checkpoint of GPT-2's own weights carry this
GPT2_TOKENIZER_HASH = hashlib.sha256(b"gpt2").hexdigest()


# every seed a run takes: numpy's generators take no more, and train.py keeps each step's torch seed
# (seed * 2**32 + step) apart from the next seed's
SEED_RULE = "a whole number from 0 to 2**32 - 1"


def whole_number(value, least, most=float("inf")):
    """Whether value is a whole number from least to most (True is an int in Python, but no number)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and least <= value <= most


def seed_ok(seed):
    """Whether seed follows SEED_RULE."""
    return whole_number(seed, 0, 2 ** 32 - 1)


def val_mask(unit_id, n):
    """The corpus's deterministic held-out split of a unit's n documents: ~10% by a hash of (unit id, index),
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


def sha256_file(path):
    """sha256 of a file's bytes, read in chunks (checkpoints and units can be large)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def fsync_dir(path):
    """Flush a directory's entries to disk, so that a rename into it survives a power cut."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; on success fsync it and rename it into place, so a
    crash never leaves a half-written file under the real name. On failure the temporary goes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # some writers (safetensors) create 0600 files: use the usual mode
        os.replace(tmp, path)
        fsync_dir(path.parent)
        remove_orphans(path)
    finally:
        if tmp.exists():
            tmp.unlink()


def remove_orphans(path):
    """Delete the temporaries beside path (files, or folders staged whole) that writers killed before
    their rename left behind (a SIGKILL runs no cleanup); a temporary whose writer still runs is left
    alone."""
    for tmp in Path(path).parent.glob(f".{glob.escape(Path(path).name)}.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[1]
        if not pid.isdigit() or _running(int(pid)):
            continue
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


def _running(pid):
    try:
        os.kill(pid, 0)  # signal 0: nothing is sent, the process is only looked up
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def atomic_write_bytes(path, data):
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)


def atomic_write_text(path, text):
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def check_writable(path, kind="directory"):
    """Refuse (ValueError, one line naming the path), before anything is written, an output `kind`
    ("directory" or "file") that cannot be made where it is named: a file where a directory belongs
    (in its place or above it), a directory where the file would go, or a place this user may not
    write. Returns path as a Path."""
    path = Path(path)
    if kind == "directory" and path.exists() and not path.is_dir():
        raise ValueError(f"{path}: is a file, where the output directory would be made")
    if kind == "file" and path.is_dir():
        raise ValueError(f"{path}: is a directory, where the output file would be written")
    # absolute: "." has no parents to look in; the directories below the nearest one that exists are made
    parent = next(d for d in path.absolute().parents if d.exists()) if path.absolute().parents else path
    if not parent.is_dir():
        raise ValueError(f"{parent}: is a file, not a directory, so {path} cannot be made there")
    if not os.access(path if path.is_dir() else parent, os.W_OK | os.X_OK):  # else found only at the first write
        raise ValueError(f"{path if path.is_dir() else parent}: not writable by this user, so {path} cannot be "
                         "made there")
    return path


def json_kind(value):
    """What JSON calls a parsed value's kind ("object", "array", "string", "number", "boolean", "null"),
    for an error saying what a file holds instead of what it should."""
    kinds = ((dict, "object"), (list, "array"), (str, "string"), (bool, "boolean"), (type(None), "null"))
    return next((name for kind, name in kinds if isinstance(value, kind)), "number")


def same_file(a, b):
    """Whether two paths name one existing file, however each is spelled (relative, .., a link)."""
    return Path(a).exists() and Path(b).exists() and os.path.samefile(a, b)


def in_directory(file, directory):
    """Whether file (written or not) would lie in directory or below it, however either is spelled."""
    return any(same_file(d, directory) for d in Path(file).resolve().parents)


def refuse_overwriting(out, inputs, error=ValueError):
    """Raise `error` where the file a command writes (--out) is one it reads: the command would replace its
    own input, and a second run would read its first run's output."""
    for f in inputs:
        if same_file(out, f):
            raise error(f"--out {out} would overwrite {f}, which this command reads")


def check_own_page(path, heading, what, own, error=ValueError):
    """Refuse (error) an existing file at path that is not a page of the command about to replace it, one
    whose first line is not heading (a README, data): it would be lost. An empty file holds nothing. what
    names the page ("results page"), own the file the command writes ("a RESULTS.md this command wrote")."""
    path = Path(path)
    if not path.exists() or path.is_dir():  # nothing to lose; a directory the writer refuses, naming its flag
        return
    if not path.is_file():
        raise error(f"{path}: not a regular file, where the {what} would be written")
    try:
        with open(path, "rb") as f:  # bytes: a file that is not UTF-8 text is no page either
            first = f.readline()
    except OSError as e:
        raise error(f"{path}: cannot be read ({e.strerror})") from None
    if first and first.rstrip(b"\r\n") != heading.encode():
        raise error(f'{path}: not a {what} (its first line is not "{heading}"), so it is not written over; give a '
                    f"new file or {own}")


def first_repeat(paths):
    """The first of paths that names a file an earlier one names (however each is spelled), with that
    earlier one: (repeat, earlier); None where every path names its own file."""
    for k, p in enumerate(paths):
        earlier = next((q for q in paths[:k] if same_file(p, q)), None)
        if earlier is not None:
            return p, earlier
    return None


def fail(e):
    """The command lines' way out for bad input: one line on stderr, exit status 2."""
    print(f"error: {e}", file=sys.stderr)
    raise SystemExit(2)


def interrupted(how_to_continue):
    """The command lines' way out on Ctrl-C: one line on stderr saying how to go on, exit status 130."""
    print(f"interrupted: {how_to_continue}", file=sys.stderr)
    raise SystemExit(130)


def stops_in_one_line(how_to_continue):
    """A decorator for a command line's main: Ctrl-C ends it in interrupted(how_to_continue)."""
    def wrap(main):
        @functools.wraps(main)
        def run(*args, **kwargs):
            try:
                return main(*args, **kwargs)
            except KeyboardInterrupt:
                interrupted(how_to_continue)
        return run
    return wrap


def run_subcommand(parser, argv=None):
    """Parse argv and run the chosen subcommand (its `run` default); bad input ends in fail(), Ctrl-C in
    interrupted() (its subcommands write each file whole or not at all, and record an event only at its end)."""
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError) as e:
        fail(e)
    except KeyboardInterrupt:
        interrupted("run the same command again")


def option(default, help, choices=None, parse=None):
    """A dataclass field with the sentence (and the choices) that --help shows for it; `parse` reads
    its command-line text where the field's type cannot."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices, "parse": parse})


def add_options(parser, cls, defaults=True, aliases=None, shown=None):
    """One flag per field of the dataclass cls (made with option()), with its help sentence and
    choices. With defaults False every flag defaults to None, for a caller that fills the rest in
    (a preset), and shown = (name, values) puts what that caller fills in beside each help sentence;
    aliases: field name -> extra flags."""
    for f in dataclasses.fields(cls):
        if f.metadata.get("help") is None:
            continue
        flags = ["--" + f.name.replace("_", "-")] + list((aliases or {}).get(f.name, ()))
        kw = dict(dest=f.name, default=f.default if defaults else None, help=f.metadata["help"].replace("%", "%%"))
        if f.type is bool:  # argparse adds the default to a boolean's help itself
            parser.add_argument(*flags, action=argparse.BooleanOptionalAction, **kw)
            continue
        if defaults and f.default not in (None, ()):
            kw["help"] += " (default: %(default)s)"
        elif shown and shown[1].get(f.name) is not None:
            kw["help"] += f" ({shown[0]}: {shown[1][f.name]})".replace("%", "%%")
        if f.metadata["choices"]:
            kw["choices"] = f.metadata["choices"]
        else:
            kw["metavar"] = f.name.upper()
        parser.add_argument(*flags, type=f.metadata["parse"] or f.type, **kw)
    return parser
