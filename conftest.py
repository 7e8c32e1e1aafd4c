"""Fixtures shared by tests/ and benchmarks/.  MNIST is found through one environment variable,
SYNAPTIC_MNIST_DIR, defaulting to ../shared/data/mnist beside the repository: the library's
rule (synaptic.datafolder.mnist_dir).  Outside CI a test may skip when the files are absent;
under CI (CI=true) their absence fails the test."""
import os
import pathlib

import pytest

from synaptic import datafolder

REPO = pathlib.Path(__file__).resolve().parent
MNIST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def mnist_dir():
    return datafolder.mnist_dir(checkout=REPO)


@pytest.fixture(scope="session")
def mnist_path():
    """The folder holding the MNIST t10k IDX files."""
    path = mnist_dir()
    missing = [f for f in MNIST_FILES if not (path / f).is_file()]
    if missing:
        message = f"MNIST files missing in {path}: {', '.join(missing)}"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    return path
