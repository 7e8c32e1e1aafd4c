"""Which kernels run a training step: the one place that chooses between the strategies.

A dense net (fully-connected layers, no stochastic units, no dropout) has three ways through
its gradients, all computing the same sums (to rounding; each kernel against its NumPy twin):

* **per layer** (always possible): each layer's forward, weight-gradient and input-gradient
  kernel, Python between the layers and the batches.  Inside each kernel, by the shape alone
  (never the thread count, so 1 and 2 threads give the same bits): an input with many exact
  zeros from 32 rows skips them (the sparse loops); a batch of at most 32 rows runs the
  register-blocked loops of ``c/small.h``, the output split between the threads by units or
  columns so that W is read once (784 -> 100 at batch 10, f32: 11 us against 16 us for
  the GEMM and 20 us for NumPy; 3072 -> 512 at batch 10: 0.22 ms against 0.9 / 0.8 ms);
  larger products call BLAS's GEMM, split by *rows* between the threads (``gemm_parts``,
  from 4M multiply-adds), each thread packing its own share of the batch, with the bias,
  activation or derivative fused over cache-sized blocks.
* **the whole epoch in one call** (``sgd_epoch``, backprop only): the batches back to back in
  one parallel region.  The first layer's units are split between the threads and kept
  transposed in their caches all epoch; the layers above split by units phase by phase.  No
  Python between the batches, no weights re-read -- but each thread packs the *whole* batch of
  each split product, so past a batch size the per-layer row split is faster.
  :func:`whole_epoch` decides (below).
* **the L-BFGS objective** (full batch): a mostly-zero x is packed once for the whole run
  (:func:`pack`); :func:`objective` then picks ``packed_objective`` (a net of one hidden
  layer with an output of at most one vector of units: forward, output layer and backward per
  block of 64 rows while it is in L1); a dense x, any depth, ``fused_objective`` (every
  layer forward and back per block of 32 rows, with the small-batch loops) while the weights
  fit in L2; else the output layer fused with its error (``output_backprop``) over the
  per-layer kernels, else the per-layer kernels.

The rule of :func:`whole_epoch`, with m the batch's rows, d and o the first layer's inputs and
units: the whole-epoch kernel unless the extra packing of its unit split, a batch of m * d
elements a thread beyond the first, costs more than the weights it keeps in cache, about
EPOCH_ROWS_PER_UNIT * o rows -- i.e. unless m > EPOCH_ROWS_PER_UNIT * o and m * d >
EPOCH_MIN_PACK (below that, the per-layer path's Python overhead a batch dominates).  The rule
does not look at the thread count, so that 1 and 2 threads take the same path and give the
same bits (test_determinism.py); with 1 thread both paths take about the same time at large
batches (784-100-10 batch 1000: 19.8 / 19.6 ms).  Measured here (f32, 2 threads, dense N(0, 1)
inputs, ms an epoch of 4,000 rows, whole epoch / per layer): 784-100-10 batch 128 13.7 / 16.1,
256 12.0 / 13.7, 1000 11.7 / 10.0, 4000 12.7 / 10.1 (the crossover near 300 = 3 x 100 units);
3072-512-10 batch 128 176 / 231; 784-512-512-10 batch 256 87 / 105; 1024-1024-1024-1024-10
batch 256 (2,000 rows) 277 / 255; 20-64-64-2 batch 256 (10,000 rows) 6.2 / 7.3.
"""
import numpy as np

from .. import _kernels
from ..layers import FullyConnected
from ..sparse import CsrRows

EPOCH_ROWS_PER_UNIT = 3
EPOCH_MIN_PACK = 1 << 16
# None: the rule; True / False: always / never the whole-epoch kernel (tests, tuning)
FORCE_WHOLE_EPOCH = None

# fused_objective: the most bytes of weights (all layers) it takes
FUSED_MAX_WEIGHT_BYTES = 2 << 20

# L-BFGS's packed input (pack): at least this many rows, this fraction of zeros (sampled)
PACK_MIN_ROWS, PACK_SAMPLE_ROWS, PACK_MIN_ZEROS, PACK_BLOCK_BYTES = 256, 256, 0.5, 28672


def whole_epoch(net, bounds, weighted=False):
    """True if an epoch of backprop over the batches ``bounds`` ((start, stop) pairs) runs in
    one ``sgd_epoch`` call: a dense net without dropout, a set without per-row weights (the
    kernel takes none), and the rule above."""
    if weighted or not (all(isinstance(layer, FullyConnected) for layer in net.layers[1:])
                        and not net.dropouts):
        return False
    if FORCE_WHOLE_EPOCH is not None:
        return FORCE_WHOLE_EPOCH
    m = max(b - a for a, b in bounds)
    d, o = net.weights[0].shape[1] - 1, net.weights[0].shape[0]
    return not (m > EPOCH_ROWS_PER_UNIT * o and m * d > EPOCH_MIN_PACK)


def pack(gradients, x, kern):
    """x packed for the whole run (``kern.pack_input``) when that pays: the native kernels, a
    dense net, a first layer's input of at least PACK_MIN_ROWS rows that is mostly zeros
    (as dense_forward's sparse path decides).  Else None.  Measured (MNIST t10k, 784-100-10,
    f32, 2 threads): an evaluation 9.0 -> 7.5 ms; x (31 MB) was read from memory twice each."""
    n = x.shape[0]
    if isinstance(x, CsrRows):  # already without its zeros: the CSR kernels read it
        return None
    if kern is not _kernels.native or n < PACK_MIN_ROWS or x.size == 0 or not gradients.packable():
        return None
    sample = x[::max(1, n // PACK_SAMPLE_ROWS)]
    if np.count_nonzero(sample) > (1.0 - PACK_MIN_ZEROS) * sample.size:
        return None
    # the weight gradient's block of rows: its dz rows (o padded to 64-byte vectors) in L1
    item = x.dtype.itemsize
    lanes = 64 // item
    width = -(-gradients.net.weights[0].shape[0] // lanes) * lanes * item
    return kern.pack_input(x, max(1, min(64, PACK_BLOCK_BYTES // width)))


def objective(gradients, packed, weighted=False, x=None):
    """How Gradients.compute_with_error evaluates: "packed" (``packed_objective``, one call),
    "fused" (``fused_objective``, one call), "top" (``output_backprop`` for the output
    layer, per-layer kernels below) or "layers" (always with per-row weights: the fused
    kernels take none).

    The rule: a dense net with a hidden layer on a packed x (mostly zeros, see :func:`pack`)
    whose one hidden layer feeds a narrow output takes "packed"; on a dense x (an ndarray,
    not CSR rows), any depth, "fused" when all its weights take at most
    FUSED_MAX_WEIGHT_BYTES -- the blocks of rows re-read every layer's weights and gradient
    sums, which must stay in L2; past that, the per-layer GEMMs over all the rows are as
    fast or faster.  Measured (f32 / f64, 2 threads, ms an evaluation, fused against "top"):
    20-100-1 on 16,000 rows 1.7 / 2.3 against 5.7 / 11.1; 50-100-5 on 40,000 rows 8.3 / 12.4
    against 16.7 / 32.9; 64-100-10 on 1,437 rows 0.33 / 0.58 against 0.57 / 1.06; 784-100-10
    on 10,000 rows 18.2 / 34.6 against 24.7 / 46.4; 784-256-128-10 52.6 / 105 against
    59.5 / 115; 3072-512-10 on 2,000 rows 110 / 280 against 69 / 137 (6.3 MB of f32
    weights: "top")."""
    net = gradients.net
    top = len(net.weights) - 1
    if weighted or top < 1 or not gradients.packable():
        return "layers"
    if packed is not None:
        return "packed" if top == 1 else "top"
    size = sum(w.size for w in net.weights) * net.weights[0].itemsize
    if isinstance(x, np.ndarray) and size <= FUSED_MAX_WEIGHT_BYTES:
        return "fused"
    return "top"
