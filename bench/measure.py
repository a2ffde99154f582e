"""Run a command in a child process and measure it: wall seconds and the child's peak resident memory."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Child:
    """What a finished child did: ``wall_s``, ``peak_mb`` (its own peak RSS, see :func:`run_child`), exit status
    and output."""

    cmd: list[str]
    wall_s: float
    peak_mb: float
    returncode: int
    out: str
    err: str

    def checked(self) -> "Child":
        """This child, or a ``RuntimeError`` with the end of its standard error when it failed."""
        if self.returncode != 0:
            raise RuntimeError(f"{' '.join(self.cmd)} failed ({self.returncode}):\n{self.err[-3000:]}")
        return self

    def last_line(self) -> str:
        """The last non-blank line the child wrote (standard error first), e.g. the error it failed with."""
        lines = [line for line in (self.err + self.out).splitlines() if line.strip()]
        return lines[-1] if lines else f"exit status {self.returncode}"


# Linux records the peak memory of a process that calls exec as at least that of the memory it leaves, and a child
# this process spawns starts in a copy (or, spawned by vfork, in the very memory) of this process: ``wait4`` on a
# direct child would report max(this process's own peak, the child's). So a small Python process forks the
# command, and reports what wait4 says of it (its peak starts from that small process's) with the command's wall
# time, as JSON through a pipe of its own.
_SPAWNER = """
import json, os, sys, time
os.set_inheritable(int(sys.argv[1]), False)   # the command does not keep the report's pipe open
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    except OSError as exc:
        print(f"{sys.argv[2]}: {exc}", file=sys.stderr)
    os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - started
os.write(int(sys.argv[1]), json.dumps({"wall_s": wall, "peak_kb": usage.ru_maxrss,
                                       "returncode": os.waitstatus_to_exitcode(status)}).encode())
"""


def run_child(cmd: list[str], *, cwd: str | os.PathLike = ROOT, env: dict | None = None) -> Child:
    """Run ``cmd`` (standard input closed, output captured) and measure it: its wall time and its own peak
    resident memory (not this process's: see ``_SPAWNER``; a Python child's peak includes the ~10 MB of the small
    process that forked it)."""
    cmd = [str(c) for c in cmd]
    read_fd, write_fd = os.pipe()
    try:
        proc = subprocess.Popen([sys.executable, "-S", "-c", _SPAWNER, str(write_fd), *cmd], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd=cwd, env=env, text=True,
                                pass_fds=(write_fd,))
    finally:
        os.close(write_fd)
    with os.fdopen(read_fd, "rb") as report:
        out, err = proc.communicate()    # both pipes at once: a child filling one cannot block on the other
        measured = report.read()
    if proc.returncode != 0 or not measured:
        raise RuntimeError(f"measuring {' '.join(cmd)} failed ({proc.returncode}):\n{err[-3000:]}")
    m = json.loads(measured)
    return Child(cmd, m["wall_s"], m["peak_kb"] / 1024, m["returncode"], out, err)
