"""Helpers shared by the benchmark scripts: machine description and BENCHMARKS.md sections."""

from __future__ import annotations

import datetime
import os
import platform
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
BENCHMARKS = REPO / "docs" / "BENCHMARKS.md"
HEADER = ("# Benchmarks\n\nMeasured with the scripts in `bench/`. Speed targets are ratios against a "
          "baseline measured in the same run, so they hold on slower or busier machines.\n")


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}, "
            f"{datetime.date.today().isoformat()}")


def data_root() -> Path | None:
    root = Path(os.environ.get("LATENT_EXPLORER_DATA", SHARED_DATA))
    return root if (root / "MNIST" / "raw").exists() else None


def mnist_root_or_say() -> Path | None:
    """:func:`data_root`, saying on stderr why there is nothing to measure when MNIST is absent."""
    root = data_root()
    if root is None:
        print("MNIST is not in ../shared/data (or $LATENT_EXPLORER_DATA): nothing to measure.", file=sys.stderr)
    return root


def write_section(title: str, body: str) -> None:
    """Replace (or append) the ``## title`` section of docs/BENCHMARKS.md."""
    BENCHMARKS.parent.mkdir(parents=True, exist_ok=True)
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else HEADER
    section = f"## {title}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    BENCHMARKS.write_text(text.rstrip("\n") + "\n")


def run_resumable(script: str, keys: list[str], out: Path, passthrough: list[str], *, jobs: int, threads: int) -> dict:
    """Run ``script --run KEY ...`` for every key without ``out/KEY.json``, ``jobs`` processes
    at a time at the lowest OS priority with ``threads`` torch threads each; return every
    key's JSON result found in ``out`` (finished runs are not repeated: the benchmark resumes)."""
    import json
    import subprocess
    import sys
    import time

    out.mkdir(parents=True, exist_ok=True)
    pending = [k for k in keys if not (out / f"{k}.json").exists()]
    running: list[tuple[str, subprocess.Popen]] = []
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    while pending or running:
        while pending and len(running) < jobs:
            key = pending.pop(0)
            cmd = ["nice", "-n", "19", sys.executable, script, "--run", key, *passthrough]
            running.append((key, subprocess.Popen(cmd, env=env)))
            print(f"started {key}", file=sys.stderr, flush=True)
        time.sleep(2)
        for key, proc in list(running):
            if proc.poll() is not None:
                running.remove((key, proc))
                print(f"{key} finished with status {proc.returncode}", file=sys.stderr, flush=True)
    return {k: json.loads((out / f"{k}.json").read_text()) for k in keys if (out / f"{k}.json").exists()}


def save_result(out: Path, key: str, result: dict) -> None:
    """Write one run's result atomically (a half-written file would be taken as finished)."""
    import json

    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f"{key}.json.tmp"
    tmp.write_text(json.dumps(result, indent=1))
    os.replace(tmp, out / f"{key}.json")
