"""Error derivatives by backprop: dE/dW summed over a batch (SYNAPTIC.md §4).

``Gradients`` owns its buffers (activities, deltas and the layers' own buffers per batch size,
one gradient array per weight matrix) and reuses them for every batch: no fresh temporaries
on the hot path.

Each layer turns the delta of the layer above into its own (see ``layers.py``): between two
fully-connected layers that is one fused kernel (``hidden_delta``: GEMM, then * f'(y)); a
convolution layer sends its delta down with ``conv_input_grad`` (times f' of the layer below,
fused), and a pooled layer routes its delta through the pool indices (max) or spreads it
over the windows (average).
"""
import numpy as np

from .. import _kernels, activations, losses
from . import strategy
from ..layers import FullyConnected
from ..layers import weight_grad as _layer_weight_grad

SPARE = 3  # slots after the gradients in Gradients.flat: error, rows, stop (distributed)


class _Workspace:
    def __init__(self, net, nrows):
        self.acts = net.activity_buffers(nrows)
        self.deltas = net.activity_buffers(nrows)
        self.bufs = net.layer_buffers(nrows, backward=True)
        # the output of layers[i] after its dropout (0: the input), where it has one
        self.dropped = [np.empty((nrows, layer.n), net.dtype) if layer.dropout else None
                        for layer in net.layers[:-1]]


def check_backprop(net, error_fn):
    """The output-delta kind for this net, or a ValueError naming what backprop cannot do."""
    for i, layer in enumerate(net.layers[1:-1], start=1):
        if layer.act not in activations.DIFFERENTIABLE:
            raise ValueError(f"backprop cannot pass through layer {i}: activation {layer.act!r} "
                             f"has no derivative (use one of {sorted(activations.DIFFERENTIABLE)})")
    return losses.delta_kind(net.layers[-1].act, error_fn)


class Gradients:
    def __init__(self, net, error_fn):
        self.net = net
        self.delta_kind = check_backprop(net, error_fn)
        # every layer's gradient a view of one contiguous buffer, followed by SPARE slots that
        # a distributed step sums with it (synaptic/distributed/_steps.py)
        self.flat = np.empty(sum(w.size for w in net.weights) + SPARE, dtype=net.dtype)
        self.grads, start = [], 0
        for w in net.weights:
            self.grads.append(self.flat[start:start + w.size].reshape(w.shape))
            start += w.size
        # the rows the last gradients were summed over (all ranks' rows); with per-row
        # weights, their sum (what a batch's summed gradient is divided by)
        self.rows = 0
        self.dropout = bool(net.dropouts)
        self.dense = (all(isinstance(layer, FullyConnected) for layer in net.layers[1:])
                      and not self.dropout)
        self._workspaces = {}

    def workspace(self, nrows):
        ws = self._workspaces.get(nrows)
        if ws is None:
            if len(self._workspaces) > 4:  # odd sizes from user calls: keep the cache small
                self._workspaces.clear()
            ws = self._workspaces[nrows] = _Workspace(self.net, nrows)
        return ws

    def total(self, value):
        """An error sum over the rows of the last :meth:`compute`: ``value`` here; summed
        over the ranks by a distributed training's wrapper (synaptic.distributed)."""
        return value

    def packable(self):
        """Whether compute() can take a packed x (kernels' pack_input): a dense net without
        stochastic units (the first layer's forward and weight gradient read the pack)."""
        return self.dense and all(layer.act != activations.STOCHASTIC
                                  for layer in self.net.layers[1:])

    def forward_dropout(self, x, ws, kern):
        """The training forward pass with the dropout masks of batch ``net._batches``: the
        activities (before dropout) in ``ws.acts``; returns what each layer read."""
        inputs = []
        self.net.forward_into(x, ws.acts, kern, ws.bufs, ws.dropped, inputs)
        return inputs

    def compute(self, x, t, kern=None, packed=None, w=None):
        """Fill and return ``self.grads`` with Σ dE/dW over the rows of ``x`` (targets ``t``).

        ``packed``: ``kern.pack_input(x, ...)``, for a net that is :meth:`packable`; the first
        layer then reads it instead of x (same results within rounding, faster when x is
        used many times).  ``w``: per-row weights, each row's output delta scaled by its
        weight (Σ w_i dE_i/dW), and :attr:`rows` their sum."""
        kern = kern or _kernels.get_backend()
        net = self.net
        w = self._weights(w, x.shape[0])
        ws = self.workspace(x.shape[0])
        inputs = None
        if self.dropout:
            if packed is not None:
                raise ValueError("a net with dropout takes no packed input")
            inputs = self.forward_dropout(x, ws, kern)
        elif packed is None:
            net.forward_into(x, ws.acts, kern, ws.bufs)
        else:
            self._forward_packed(x, ws, kern, packed, len(net.weights))
        out_layer = net.layers[-1]
        kern.output_delta(ws.acts[-1], t, out_layer.act_code, self.delta_kind, ws.deltas[-1],
                          out_layer.slope)
        if w is not None:  # every gradient below is linear in the output delta
            ws.deltas[-1] *= w[:, None]
        if self.dense:
            self._backward(x, ws, kern, packed, len(net.weights) - 1)
            return self.grads
        counter = net._batches
        for i in range(len(net.weights) - 1, -1, -1):
            layer, buf = net.layers[i + 1], ws.bufs[i]
            below = inputs[i] if inputs is not None else x if i == 0 else ws.acts[i - 1]
            layer.finish_delta(kern, ws.deltas[i], buf)
            layer.weight_grad(kern, ws.deltas[i], below, self.grads[i], buf)
            if i > 0:
                # f' of the layer below at its own output (before its dropout), then the mask
                layer.input_grad(kern, ws.deltas[i], net.weights[i], ws.acts[i - 1],
                                 net.layers[i].fused_act, ws.deltas[i - 1], buf,
                                 net.layers[i].slope)
                drop = net.layers[i].dropout
                if drop is not None:
                    kern.dropout(ws.deltas[i - 1], ws.deltas[i - 1], drop.p, drop.key(counter))
        return self.grads

    def compute_with_error(self, x, t, err, kern=None, packed=None, w=None):
        """(Σ error of kind ``err`` over the rows, :meth:`compute`'s gradients) at once.

        strategy.objective chooses: a :meth:`packable` net with a hidden layer runs its
        output layer through ``kern.output_backprop`` (forward, error, delta, gradient and the
        delta below in one pass over row chunks), and a net of one hidden layer on a
        ``packed`` x the whole evaluation in ``kern.packed_objective``, a small enough dense
        net of any depth on a dense x in ``kern.fused_objective``; otherwise compute(),
        then error_sum.  With per-row weights ``w``: compute() and the weighted sum
        Σ w_i error_i (the fused kernels take no weights).  The output activities are always
        in ``workspace(n).acts[-1]``."""
        kern = kern or _kernels.get_backend()
        net = self.net
        self.rows = x.shape[0]
        top = len(net.weights) - 1
        how = strategy.objective(self, packed, weighted=w is not None, x=x)
        if how == "layers":
            grads = self.compute(x, t, kern, packed, w)
            out = self.workspace(x.shape[0]).acts[-1]
            if w is None:
                return kern.error_sum(out, t, err), grads
            from .stats import weighted_error_sum  # stats imports this module's neighbours
            return weighted_error_sum(out, t, err, w), grads
        ws = self.workspace(x.shape[0])
        if how == "fused":
            # any depth on a dense x: the whole evaluation in one kernel (ws.acts[:-1], the
            # hidden activities, are not filled)
            layers = net.layers[1:]
            error = kern.fused_objective(x, net.weights, t, [la.act_code for la in layers],
                                         [la.slope for la in layers], self.delta_kind, err,
                                         ws.acts[-1], self.grads)
            return error, self.grads
        if how == "packed":
            # input -> hidden -> output on a packed x: the whole evaluation in one kernel
            # (ws.acts[0], the hidden activities, is not filled)
            self._check_packed(x, packed)
            error = kern.packed_objective(packed, net.weights[0], net.weights[1], t,
                                          net.layers[1].act_code, net.layers[2].act_code,
                                          self.delta_kind, err, ws.acts[1], self.grads[0],
                                          self.grads[1], net.layers[1].slope, net.layers[2].slope)
            return error, self.grads
        if packed is None:
            for i in range(top):
                net.layers[i + 1].forward(kern, x if i == 0 else ws.acts[i - 1], net.weights[i],
                                          ws.acts[i])
        else:
            self._forward_packed(x, ws, kern, packed, top)
        error = kern.output_backprop(ws.acts[top - 1], net.weights[top], t, net.layers[-1].act_code,
                                     self.delta_kind, err, net.layers[top].act_code, ws.acts[top],
                                     ws.deltas[top], self.grads[top], ws.deltas[top - 1],
                                     net.layers[-1].slope, net.layers[top].slope)
        self._backward(x, ws, kern, packed, top - 1)
        return error, self.grads

    def _weights(self, w, nrows):
        """Sets :attr:`rows` (``nrows``, or the weights' sum); returns the weights as the
        net's dtype (None without)."""
        if w is None:
            self.rows = nrows
            return None
        if w.shape != (nrows,):
            raise ValueError(f"per-row weights of shape {w.shape}, expected ({nrows},)")
        self.rows = float(np.sum(w, dtype=np.float64))
        return np.asarray(w, dtype=self.net.dtype)

    def _forward_packed(self, x, ws, kern, packed, upto):
        """The forward pass of layers 0..upto-1 of a packable net, the first on the pack."""
        self._check_packed(x, packed)
        net = self.net
        kern.packed_forward(packed, net.weights[0], net.layers[1].act_code, ws.acts[0],
                            net.layers[1].slope)
        for i in range(1, upto):
            net.layers[i + 1].forward(kern, ws.acts[i - 1], net.weights[i], ws.acts[i])

    def _check_packed(self, x, packed):
        if not self.packable() or packed.x is not x:
            raise ValueError("a packed input needs a dense net without stochastic units, "
                             "packed from the same x")

    def _backward(self, x, ws, kern, packed, top):
        """Dense layers top..0 (a packable net): weight gradients, deltas below."""
        net = self.net
        for i in range(top, -1, -1):
            if i == 0 and packed is not None:
                kern.packed_weight_grad(ws.deltas[0], packed, self.grads[0])
            else:  # (x may be sparse: CsrRows)
                _layer_weight_grad(kern, ws.deltas[i], x if i == 0 else ws.acts[i - 1],
                                   self.grads[i])
            if i > 0:
                kern.hidden_delta(ws.deltas[i], net.weights[i], ws.acts[i - 1],
                                  net.layers[i].act_code, ws.deltas[i - 1], net.layers[i].slope)


def error_fn_of(net):
    return net.training.params["error_fn"] if net.training is not None else "cross-entropy"


def inverse_rows(rows):
    """1 / a batch's rows (or weight sum); 0 for a batch whose weights are all zero (no
    gradient: its step is that of a zero gradient)."""
    return 1.0 / rows if rows else 0.0


def row_weights(net, dset):
    """The per-row weights of the DataSet ``dset`` in the net's dtype, None without."""
    return None if dset.w is None else np.ascontiguousarray(dset.w, dtype=net.dtype)


def labelled(net, dset, who):
    """(x, t) of the labelled DataSet ``dset`` as the net takes them; ``who`` names the caller
    in the errors."""
    dset.validate()
    if dset.y is None:
        raise ValueError(f"{who} needs a labelled data set")
    x = net.as_input(dset.x)
    t = np.ascontiguousarray(dset.y, dtype=net.dtype)
    if t.shape != (x.shape[0], net.n_outputs):
        raise ValueError(f"targets of shape {t.shape}, expected {(x.shape[0], net.n_outputs)}")
    return x, t


def error_derivatives(net, dset):
    """Σ dE/dW over the samples of ``dset``: one array per weight matrix (summed, not averaged,
    as the original; a weighted DataSet's: Σ w_i dE_i/dW).

    Parameters
    ----------
    net : Net
        With a training (its ``error_fn``) or without (cross-entropy).
    dset : DataSet
        Labeled samples.

    Returns
    -------
    list of numpy.ndarray
        Shaped as ``net.weights``, the bias gradient in column 0.

    Raises
    ------
    ValueError
        Unlabeled data or the wrong number of values or classes.

    Examples
    --------
    >>> import numpy as np, synaptic as syn
    >>> net = syn.mlp([2, 3, 2], ["sigmoid", "softmax"], seed=1)
    >>> grads = syn.error_derivatives(net, syn.dataset([[0, 1], [1, 0]], [[1, 0], [0, 1]]))
    >>> [g.shape for g in grads]
    [(3, 3), (2, 4)]
    """
    x, t = labelled(net, dset, "error_derivatives")
    grads = Gradients(net, losses.check_error_fn(error_fn_of(net))).compute(
        x, t, w=row_weights(net, dset))
    return [g.copy() for g in grads]
