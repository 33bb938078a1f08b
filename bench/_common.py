"""Helpers shared by the benchmark scripts: machine description and BENCHMARKS.md sections."""

from __future__ import annotations

import datetime
import os
import platform
import re
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
