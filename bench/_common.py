"""Helpers shared by the benchmarks: the machine's description and goal lines."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def cpu_name() -> str:
    """The processor's model name (Linux /proc/cpuinfo, else platform.processor())."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    """One line: CPU, cores, OS, Python, load average."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{cpu_name()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, load average {load:.1f}"
    )


def load_now() -> str:
    """The 1-minute load average, for the end of a run."""
    return f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "n/a"


def goal_line(name: str, value: float, goal: float, higher_is_better: bool, unit: str = "") -> str:
    """'name: 0.62 (goal >= 0.50) met' or '... NOT met'."""
    met = value >= goal if higher_is_better else value <= goal
    sign = ">=" if higher_is_better else "<="
    return f"{name}: {value:.2f}{unit} (goal {sign} {goal:.2f}{unit}) {'met' if met else 'NOT met'}"


def load_warning() -> str | None:
    """A warning when other processes keep the cores busy (the 1-minute load above the core count)."""
    if not hasattr(os, "getloadavg"):
        return None
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load <= cores:
        return None
    return (
        f"WARNING: load average {load:.1f} > {cores} cores: other processes hold the cores, and a thread pool "
        f"that waits at barriers (PyTorch's OpenMP) loses whole time slices; wall-clock ratios are not "
        f"representative. --cpu-time gives the per-core comparison."
    )
