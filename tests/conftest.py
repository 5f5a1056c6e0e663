"""Shared pytest set-up: Hypothesis profiles, the gpu marker, and the path to shared data."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

REPO = Path(__file__).resolve().parent.parent

# "ci" is the default: enough examples to find shape bugs, no deadlines (2-core machines are slow).
settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=400, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    """Skip tests marked ``gpu`` when no CUDA device is present."""
    if _cuda_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (none found)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_data() -> Path | None:
    """Folder with the original MNIST / Fashion-MNIST files, when this machine has it."""
    for cand in (os.environ.get("CNNLAB_SHARED_DATA"), REPO.parent / "shared" / "data"):
        if cand and Path(cand).is_dir():
            return Path(cand)
    return None


@pytest.fixture(scope="session", autouse=True)
def _own_layers_folder():
    """Notebooks 04-06 save the student's layers for 07 (``cnnlab.own_layers``): under the tests they
    go to a folder of this test session (removed afterwards), never into the repository, and 07 does
    not read what an earlier run left behind."""
    if os.environ.get("CNNLAB_MY_LAYERS"):
        yield
        return
    folder = tempfile.mkdtemp(prefix="cnnlab-my-layers-")
    os.environ["CNNLAB_MY_LAYERS"] = folder
    try:
        yield
    finally:
        os.environ.pop("CNNLAB_MY_LAYERS", None)
        shutil.rmtree(folder, ignore_errors=True)
