"""prometheus-client's multiprocess mode, kept small enough to scrape for months.

Every process that records a metric (each ``serve --processes`` process, each embedded render
process, each Celery pool process) writes its values to files of its own in one directory,
named by pid; a scrape adds them all up. That is how counters stay right when the render that
counted them ran in another process.

An embedded render runs in a process of its own, so a directory that only grows would hold
two files per render ever made and every scrape would read them all. :func:`compact` folds the
files of dead processes into one ``*_archive.db`` per metric type (counters and histograms are
sums, so adding is exact) and removes them: the directory holds the live processes' files
plus a few archives. A crash between writing the archive and removing a dead file would count
that file twice; nothing else can lose or double a count.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from prometheus_client import values
from prometheus_client.metrics_core import Metric
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import MultiProcessCollector

ENV = "PROMETHEUS_MULTIPROC_DIR"
SHM = Path("/dev/shm")
ADDITIVE_TYPES = ("counter", "histogram")
"""The types renderlab records. (A gauge file keeps its pid's last value: not to be summed.)"""


def directory_for(data_path: Path, name: str) -> Path:
    """Where the processes of one server (``name``: ``serve-8000``, ``worker-host``) of the data
    dir ``data_path`` record, OUTSIDE the data dir: the values are memory-mapped files, and a
    page of one touched on a full filesystem is a SIGBUS that kills the process. A full data
    disk must cost writes, not the server (``tests/test_reliability_disk_full.py``). RAM-backed
    ``/dev/shm`` where there is one, as prometheus-client advises, else the temp dir."""
    root = SHM if SHM.is_dir() and os.access(SHM, os.W_OK) else Path(tempfile.gettempdir())
    digest = hashlib.sha256(str(data_path.resolve()).encode()).hexdigest()[:12]
    return root / f"renderlab-metrics-{digest}" / name


def use_directory(directory: Path, *, clean: bool) -> Path:
    """Make this process, and every process started from it afterwards, record into
    ``directory``. ``clean`` empties it first: the parent of a fresh set of processes does so
    once, before forking, so counts start at zero with the server as Prometheus expects."""
    if clean and directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    os.environ[ENV] = str(directory)
    values.ValueClass = values.get_value_class()  # prometheus-client decides at import time
    return directory


def current_directory() -> Path | None:
    value = os.environ.get(ENV)
    return Path(value) if value else None


class CompactingCollector:
    """The sum over every process's files, compacting the dead ones first."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def collect(self) -> Iterable[Metric]:
        compact(self.directory)
        return MultiProcessCollector(None, str(self.directory)).collect()


def compact(directory: Path) -> int:
    """Fold the files of processes that are gone into the archives; returns how many.

    Scrapes of several processes may run at once: one compacts (under an ``flock`` beside
    the files), the others skip and read the files as they are, which sum to the same.
    """
    with _exclusive(directory / "compact.lock") as locked:
        if not locked:
            return 0
        folded = 0
        for kind in ADDITIVE_TYPES:
            dead = [path for path in directory.glob(f"{kind}_*.db") if _is_dead(path)]
            if not dead:
                continue
            archive = MmapedDict(str(directory / f"{kind}_archive.db"))
            try:
                for path in dead:
                    _add_into(archive, path)
                    path.unlink()
                    folded += 1
            finally:
                archive.close()
        return folded


def _add_into(archive: MmapedDict, path: Path) -> None:
    for key, value, timestamp, _ in MmapedDict.read_all_values_from_file(str(path)):
        current, _ = archive.read_value(key)
        archive.write_value(key, current + value, timestamp)


def _is_dead(path: Path) -> bool:
    pid_text = path.stem.rsplit("_", 1)[-1]
    if not pid_text.isdigit():
        return False  # an archive
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, someone else's
    return False


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[bool]:
    with open(lock_path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
