"""NumPy twin of every compiled kernel: same names, same signatures, same results.

This module is the contract: the ``numpy`` backend, whose names the compiled backend
(``native.py``) takes over one by one; tests compare the two on random shapes.  It gathers
the twins, none of which imports this module:

* ``reference_dense.py``: dense.pyx, loss.pyx, update.pyx (the per-layer kernels, the
  ACT_* / ERR_* / DELTA_* / REG_* codes, the conventions);
* ``reference_conv.py``: conv.pyx, pool.pyx;
* ``reference_packed.py``: the packed inputs of dense.pyx (dense_packed.pxi,
  dense_objective.pxi);
* ``reference_epoch.py``: sgd_epoch (dense_epoch.pxi);
* ``reference_csr.py``: csr.pyx (a first layer on a CSR input).

Each imports only NumPy/SciPy, ``checks.py`` (what the twins share with the compiled
kernels), ``acts.py`` (the activation table: codes, NumPy forward and derivative) and the
twins above it in this list.
"""
from .reference_dense import *  # noqa: F401,F403
from .reference_conv import *  # noqa: F401,F403
from .reference_epoch import *  # noqa: F401,F403
from .reference_packed import *  # noqa: F401,F403
from .reference_csr import *  # noqa: F401,F403
