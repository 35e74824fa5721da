"""
The growth passport: an append-only JSONL file of corpus events (init, unit_added, adapter_trained,
unit_verified, model_trained), one a line, each holding the sha256 of the line before it, so that
an edit of any line but the last, or a line taken from the middle, is detected. The last line has
no successor to vouch for it: an edit of it, or lines cut from the end, show only against a head
recorded elsewhere (`check` prints the last line's sha256, each report keeps the one it read, and
`curriculum.py check --head` finds a recorded one in the chain).
It records what has been put into the future model, and how it tested.
"""
import argparse
import collections
import fcntl
import hashlib
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path

from common import fail, stops_in_one_line
from units import CurriculumError

EVENTS = ("init", "unit_added", "adapter_trained", "unit_verified", "model_trained")
GENESIS = "0" * 64  # the prev of the first event


class Passport:
    """Append-only JSONL of corpus events; each line holds the sha256 of the line before it."""

    def __init__(self, path):
        self.path = Path(path)

    @contextmanager
    def _locked(self, mode="rb", lock=fcntl.LOCK_SH):
        """The passport open under a lock: an appender holds LOCK_EX while it writes a line, so a reader
        holding LOCK_SH never reads half of one, and a repair (LOCK_EX) never cuts one being written."""
        with open(self.path, mode) as f:
            fcntl.flock(f, lock)
            yield f

    def _last_line(self):
        """The last complete line (without newline), reading only the file's tail."""
        with open(self.path, "rb") as f:
            pos, buf = f.seek(0, 2), b""
            f.seek(max(pos - 1, 0))
            if pos and f.read(1) != b"\n":
                raise CurriculumError(f"{self.path}: the last line lacks its newline (a crash mid-append?); run "
                                      "`python curriculum.py check CORPUS --repair` (it gives a whole event its "
                                      "newline back, or drops a torn line)")
            while pos > 0:
                step = min(1 << 16, pos)
                pos -= step
                f.seek(pos)
                buf = f.read(step) + buf
                cut = buf.rfind(b"\n", 0, len(buf) - 1)
                if cut >= 0:
                    return buf[cut + 1:-1]
            return buf[:-1] if buf else None

    def append(self, event, **fields):
        """Append one event (fsynced) and return it as a dict."""
        if event not in EVENTS:
            raise CurriculumError(f"unknown passport event {event!r} (expected one of {', '.join(EVENTS)})")
        if {"event", "time", "prev"} & set(fields):
            raise CurriculumError("passport fields 'event', 'time' and 'prev' are set by the passport itself")
        with self._locked("ab", fcntl.LOCK_EX) as f:  # concurrent appenders (train, evaluate) must not share a prev
            last = self._last_line()
            rec = {"event": event, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   "prev": hashlib.sha256(last).hexdigest() if last is not None else GENESIS, **fields}
            try:
                line = json.dumps(rec, separators=(",", ":")).encode() + b"\n"
            except TypeError as e:
                raise CurriculumError(f"passport event {event!r} is not JSON-serializable: {e}") from None
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        return rec

    def events(self, event=None, needs=()):
        """All complete events (optionally only those named event), oldest first. needs: the fields
        the caller reads from them ("shards.train": a dict's key); an event lacking one is named."""
        if not self.path.exists():
            return []
        out = []
        for no, line in enumerate(self.path.read_bytes().split(b"\n")[:-1], 1):  # a torn last line is no event
            e = _event(line, f"{self.path}:{no}", "; run `python curriculum.py check CORPUS`")
            if event is None or e["event"] == event:
                out.append(holding(e, needs, f"{self.path}:{no}"))
        return out

    def check(self):
        """Verify the hash chain; raise CurriculumError naming the line where it breaks. Return the event count."""
        with self._locked() as f:
            lines = f.read().split(b"\n")
        if lines[-1] != b"":
            raise CurriculumError(self._unterminated(lines)[1])
        lines, prev = lines[:-1], GENESIS
        for no, line in enumerate(lines, 1):
            rec_prev = _event(line, f"{self.path}:{no}")["prev"]
            if rec_prev != prev:  # named where the chain breaks: which line changed, and how, the chain cannot tell
                broken = (f"line {no} does not follow line {no - 1} (it records another sha256 than line {no - 1}'s)"
                          if no > 1 else f"line 1 does not begin the chain (its prev is not {GENESIS[:8]}...)")
                raise CurriculumError(f"{self.path}:{no}: {broken}: a line edited, removed, reordered or repeated")
            prev = hashlib.sha256(line).hexdigest()
        return len(lines)

    def head(self):
        """The sha256 of the last complete line (GENESIS for an empty passport): record it elsewhere to
        detect later an edit of the last line or lines cut from the end."""
        if not self.path.exists():
            return GENESIS
        with self._locked():
            last = self._last_line()
        return hashlib.sha256(last).hexdigest() if last is not None else GENESIS

    def line_of(self, sha):
        """The number of the line whose sha256 is sha (0 for GENESIS, the empty passport's head), or
        None: a head recorded earlier (a report's passport_head) that is no line of the passport now
        means lines were cut from its end, or its last line edited, since it was recorded."""
        if sha == GENESIS:
            return 0
        for no, line in enumerate(self.path.read_bytes().split(b"\n")[:-1], 1):
            if hashlib.sha256(line).hexdigest() == sha:
                return no
        return None

    def _unterminated(self, lines):
        """(what repair does, why) for a last line lacking its newline (lines: the file split at newlines):
        "complete" a whole event that follows the line before it (only the newline was lost: it is given
        back), "drop" a torn line (a crash mid-append: no JSON object), None anything else (refused)."""
        no, where = len(lines), f"{self.path}:{len(lines)}"
        try:
            rec = json.loads(lines[-1])
        except (ValueError, RecursionError):
            return "drop", (f"{where}: incomplete final line (a crash mid-append?); "
                            "run `python curriculum.py check CORPUS --repair` to drop it")
        prev = hashlib.sha256(lines[-2]).hexdigest() if no > 1 else GENESIS
        if isinstance(rec, dict) and rec.get("event") in EVENTS and rec.get("prev") == prev:
            return "complete", (f"{where}: the final line lacks its newline, though it is a whole event; run "
                                "`python curriculum.py check CORPUS --repair` to give it its newline back")
        return None, (f"{where}: the final line lacks its newline and is JSON, but not the event that follows "
                      f"line {no - 1} (edited by hand?); --repair leaves it: fix or remove it by hand")

    def repair(self):
        """Mend a last line lacking its newline (a crash mid-append), and nothing else: a whole event
        gets its newline back, a torn line is dropped, any other line is refused. Return what was done
        in words (None: nothing to mend)."""
        with self._locked("r+b", fcntl.LOCK_EX) as f:
            data = f.read()
            if not data or data.endswith(b"\n"):
                return None
            lines = data.split(b"\n")
            what, why = self._unterminated(lines)
            if what is None:
                raise CurriculumError(why)
            keep = len(data) - len(lines[-1])
            if what == "complete":  # the event was written whole: dropping it would lose it
                f.seek(0, 2)
                f.write(b"\n")
            else:
                f.truncate(keep)
            os.fsync(f.fileno())
        if what == "complete":
            return f"gave the final passport line (line {len(lines)}, a whole event) its newline back"
        return f"dropped an incomplete final passport line ({len(data) - keep} bytes)"


def _event(line, where, hint=""):
    """One passport line as its event; a CurriculumError naming where for anything else."""
    if line.startswith(b"\xef\xbb\xbf"):  # json reads past it, so the chain would break one line later
        raise CurriculumError(f"{where}: begins with a UTF-8 byte order mark (saved by an editor?); "
                              "remove those 3 bytes (EF BB BF)")
    try:
        rec = json.loads(line)
    except (ValueError, RecursionError):  # bad UTF-8 or JSON, an integer past Python's 4300 digits, or nested too deep
        rec = None
    if not (isinstance(rec, dict) and isinstance(rec.get("event"), str) and isinstance(rec.get("prev"), str)):
        raise CurriculumError(f"{where}: not a passport event (edited or corrupted){hint}")
    return rec


def holding(rec, needs, where):
    """rec, if it holds every field of needs; else a CurriculumError naming where (a line written by
    hand with its chain recomputed would otherwise fail later as a KeyError)."""
    for need in needs:
        key, _, sub = need.partition(".")
        if key not in rec or (sub and not (isinstance(rec[key], dict) and sub in rec[key])):
            raise CurriculumError(f"{where}: {rec['event']} event without {need} (edited or corrupted)")
    return rec


@stops_in_one_line("it writes nothing; run it again")
def main(argv=None):
    p = argparse.ArgumentParser(description="Verify a growth passport's hash chain and count its events; "
                                "exit 2 naming the first bad line.")
    p.add_argument("passport", help="the passport file (CORPUS/passport.jsonl)")
    args = p.parse_args(argv)
    passport = Passport(args.passport)
    if passport.path.is_dir():
        fail(f"{passport.path}: is a directory, not a passport file (CORPUS/passport.jsonl)")
    if not passport.path.is_file():
        fail(f"{passport.path}: no such passport file")
    try:
        n = passport.check()
        events = passport.events()
    except CurriculumError as e:
        fail(e)
    # a chain of nothing, or one a corpus never begins, checks as ok: curriculum.py refuses both
    if not events:
        fail(f"{passport.path}: no events, so no init event (a corpus's passport begins with the one "
             "`curriculum.py init` writes)")
    if events[0]["event"] != "init":
        fail(f"{passport.path}:1: a {events[0]['event']} event, not init (a corpus's passport begins with the "
             "one `curriculum.py init` writes)")
    counts = collections.Counter(e["event"] for e in events)
    print(f"ok: {n} events ({', '.join(f'{k} {v}' for k, v in counts.items())}); last line sha256 {passport.head()}")


if __name__ == "__main__":
    main()
