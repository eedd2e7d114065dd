"""A run's outputs appear together or not at all: staged beside the final directory, swapped in at the end.

``StagedOutputs(final_dir)``: ``begin()`` removes what dead runs left behind and creates the staging directory
``<output_dir>/.<experiment>.partial-<pid>`` (hidden, so ``results/*/results.json`` never matches it); the run
writes results.json, runs/, tables and plots there; ``commit()`` moves the final directory's other entries
(a README, training logs, anything that is not a run output: ``OUTPUT_NAMES``) into the staging directory and
swaps the two directories in one ``renameat2(RENAME_EXCHANGE)`` (Linux; elsewhere two renames, the old one
first kept as ``.<experiment>.old-<pid>``), then deletes the old outputs. ``abandon()`` deletes the staging
directory. A run killed at any point leaves the previous complete outputs in place (or, killed between the
two fallback renames, in ``.old-<pid>``, which the next ``begin()`` moves back); the next run also returns
any entries a killed commit had moved into its staging directory.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Optional

log = logging.getLogger(__name__)

TABLE_FILES = ("table.md", "table.tex", "table.csv")
PLOT_NAMES = ("recall_curves", "depth_sweep", "quality_latency")
OUTPUT_NAMES = frozenset({"results.json", "results.json.tmp", "runs", *TABLE_FILES,
                          *(f"{name}.{ext}" for name in PLOT_NAMES for ext in ("png", "pdf"))})
_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # a leftover of an earlier run in this process: that run has ended
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux ``renameat2``); False where the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(a))


class StagedOutputs:
    """Staging and swapping of one experiment's output directory (see the module docstring)."""

    def __init__(self, final_dir: Path) -> None:
        self.final = Path(final_dir)
        self.staging = self.final.parent / f".{self.final.name}.partial-{os.getpid()}"
        self.old = self.final.parent / f".{self.final.name}.old-{os.getpid()}"

    def _leftovers(self, kind: str) -> list[Path]:
        """``.<experiment>.<kind>-<pid>`` directories of runs that are no longer alive."""
        pattern = re.compile(rf"\.{re.escape(self.final.name)}\.{kind}-(\d+)")
        if not self.final.parent.is_dir():
            return []
        found = []
        for path in self.final.parent.iterdir():
            match = pattern.fullmatch(path.name)
            if match and path.is_dir() and not _alive(int(match.group(1))):
                found.append(path)
        return sorted(found)

    def recover(self) -> None:
        """Put back what killed runs left: a previous output directory caught between the two fallback
        renames, and non-output entries moved into a staging directory by a killed commit; delete the rest."""
        for old in self._leftovers("old"):
            if not self.final.exists():
                log.warning("restoring %s from %s (a run was killed while swapping its outputs in)", self.final, old)
                os.replace(old, self.final)
            else:
                shutil.rmtree(old, ignore_errors=True)
        for partial in self._leftovers("partial"):
            log.info("removing %s (left by a run that did not finish)", partial)
            self._discard(partial)

    def _discard(self, partial: Path) -> None:
        """Move a staging directory's non-output entries back to the final directory, then delete it."""
        if partial.is_dir():
            for entry in partial.iterdir():
                if entry.name not in OUTPUT_NAMES and not (self.final / entry.name).exists():
                    self.final.mkdir(parents=True, exist_ok=True)
                    os.replace(entry, self.final / entry.name)
        shutil.rmtree(partial, ignore_errors=True)

    def begin(self) -> Path:
        """Recover leftovers, create an empty staging directory and return it."""
        self.recover()
        shutil.rmtree(self.staging, ignore_errors=True)
        self.staging.mkdir(parents=True)
        return self.staging

    def previous(self) -> Optional[Path]:
        """The final directory when it exists (its verified run files may be reused), else None."""
        return self.final if self.final.is_dir() else None

    def commit(self) -> Path:
        """Swap the staged outputs in (keeping the final directory's non-output entries); returns the final dir."""
        if not self.final.exists():
            os.replace(self.staging, self.final)
            return self.final
        for entry in self.final.iterdir():
            if entry.name not in OUTPUT_NAMES and not (self.staging / entry.name).exists():
                os.replace(entry, self.staging / entry.name)
        if _exchange(self.staging, self.final):
            shutil.rmtree(self.staging, ignore_errors=True)  # now the previous outputs
            return self.final
        shutil.rmtree(self.old, ignore_errors=True)
        os.replace(self.final, self.old)
        os.replace(self.staging, self.final)
        shutil.rmtree(self.old, ignore_errors=True)
        return self.final

    def abandon(self) -> None:
        """Delete the staging directory (the run failed; the final directory keeps its previous content)."""
        if not self.final.exists() and self.old.is_dir():
            os.replace(self.old, self.final)  # failed between the two fallback renames
        self._discard(self.staging)
