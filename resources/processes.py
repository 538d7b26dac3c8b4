"""Which process made something, and whether it still runs: for leftovers of killed statements.

A process is named by host, pid and its start time (pids are reused; a restarted container may
run a new process under an old pid), read from /proc where there is one.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot ('' where /proc cannot tell)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]  # field 22, counted after the parenthesized command name


@dataclass(frozen=True)
class ProcessId:
    host: str
    pid: int
    started: str

    @classmethod
    def current(cls) -> ProcessId:
        return cls(socket.gethostname(), os.getpid(), _start_time(os.getpid()))

    def as_name(self) -> str:
        return f"{self.host}~{self.pid}~{self.started}"

    @classmethod
    def from_name(cls, name: str) -> ProcessId | None:
        parts = name.rsplit("~", 2)  # host names may hold anything but the last two fields are ours
        if len(parts) != 3 or not parts[1].isdigit():
            return None
        return cls(parts[0], int(parts[1]), parts[2])

    @property
    def alive(self) -> bool:
        """Whether it still runs; a process of another host counts as alive (this one cannot tell)."""
        if self.host != socket.gethostname():
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return not self.started or _start_time(self.pid) in ("", self.started)
