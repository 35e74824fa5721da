"""A script's main() run in the test process as `python SCRIPT ARGS...` from the repository root would run it.

Starting an interpreter (and torch) costs a second or more a time: refusals and other quick command lines run
here, and a few tests in each file keep the real process where it is the point (its exit status, a signal)."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_main(main, args, capsys, cwd=ROOT):
    """main() with sys.argv set to the script and `args`, in cwd: its exit status and what it printed, as
    subprocess.run(..., capture_output=True, text=True, cwd=cwd) gives them."""
    argv = [str(ROOT / f"{main.__module__}.py"), *map(str, args)]
    with pytest.MonkeyPatch.context() as m:
        m.chdir(cwd)
        m.setattr(sys, "argv", argv)
        capsys.readouterr()  # what the test printed before: not the command's
        try:
            main()
            code = 0
        except SystemExit as e:  # the exit status the interpreter would give it
            code = e.code
            if code is None:
                code = 0
            elif not isinstance(code, int):
                print(code, file=sys.stderr)
                code = 1
        out, err = capsys.readouterr()
    return subprocess.CompletedProcess(argv, code, out, err)


def ctrl_c(*args, **kwargs):
    """Stands in, by monkeypatch, for a function a command is in when the user presses Ctrl-C."""
    raise KeyboardInterrupt
