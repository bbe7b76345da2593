"""Independent jobs (searches, stand-alone retrains) run side by side in spawned processes, and
a JSON file of their finished results so that a killed run goes on: what the benchmarks that
train many networks share."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from pathlib import Path

import torch

from lightnas.runtime.fileio import write_json_atomic

CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class InProcess(Executor):
    """Runs each job at once, in this process (one job at a time: no spawn, easy to debug)."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def executor(jobs: int) -> Executor:
    """`jobs` spawned processes of CORES // jobs torch threads each, or (1) this process."""
    if jobs == 1:
        return InProcess()
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(jobs, context, _init_worker, (max(1, CORES // jobs),))


class ResultCache:
    """Finished results by key, in a JSON file rewritten atomically as each one finishes (in
    memory only without a path). A key must name every setting its result depends on."""

    def __init__(self, path: str | None) -> None:
        self.path, self.lock = path, threading.Lock()
        exists = path is not None and Path(path).is_file()
        self.results: dict = json.loads(Path(path).read_text()) if exists else {}

    def put(self, key: str, value) -> None:
        with self.lock:
            self.results[key] = value
            if self.path is not None:
                write_json_atomic(Path(self.path), self.results)

    def submit(self, pool: Executor, key: str, fn: Callable, *args) -> Future:
        """`fn(*args)`'s result: the cached one, or run on `pool` and cached when it finishes."""
        if key in self.results:
            done: Future = Future()
            done.set_result(self.results[key])
            return done
        future = pool.submit(fn, *args)
        future.add_done_callback(lambda f: f.exception() is None and self.put(key, f.result()))
        return future
