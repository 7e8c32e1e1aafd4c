"""Pictures of a net: learning curves, weight histograms, the first layer's weights as images.

Needs matplotlib (the ``plot`` extra).  It is imported when a plot is drawn, and only its
object-oriented API is used with the Agg canvas, so pyplot's global backend (a notebook's,
say) is left alone.  Every function writes one PNG of a fixed size and returns its path.
"""
import math
import pathlib

import numpy as np

from .utils import divisors, weight_histograms, without_bias

DPI = 100
PANEL = (5.0, 3.6)        # inches per panel of the error and histogram figures
TILES_FIGSIZE = (8.0, 7.0)
MAX_TILES = 100

__all__ = ["plot_errors", "plot_first_layer", "plot_net", "plot_weight_histograms"]


def _figure(figsize):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("plots need matplotlib: pip install matplotlib (or synaptic[plot])") from None
    fig = Figure(figsize=figsize, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _panels(n):
    """(figure, axes list) for n panels, at most 3 per row."""
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    fig = _figure((PANEL[0] * ncols, PANEL[1] * nrows))
    axes = [fig.add_subplot(nrows, ncols, i + 1) for i in range(n)]
    return fig, axes


def _save(fig, path):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return path


def plot_errors(stats, path, title=None):
    """One panel per recorded error kind: training and validation error per epoch."""
    kinds = [k for k, v in stats.tr_err.items() if v] if stats else []
    if not kinds:
        raise ValueError("no recorded epochs to plot (train the net first)")
    fig, axes = _panels(len(kinds))
    epochs = np.arange(1, stats.epochs + 1)
    for ax, kind in zip(axes, kinds):
        tr = stats.tr_err[kind]
        ax.plot(epochs[:len(tr)], tr, marker=".", label="training")
        val = stats.val_err.get(kind) or []
        if val:
            ax.plot(epochs[:len(val)], val, marker=".", label="validation")
        ax.set_title(kind)
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_ylabel("accuracy" if kind == "accuracy" else "error")
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(title or "error per epoch")
    return _save(fig, path)


def plot_weight_histograms(weights, path, nbins=20, title=None):
    """One histogram per weight matrix (bias column excluded), as ``utils.weight_histograms``."""
    hists = weight_histograms(weights, nbins)
    fig, axes = _panels(len(hists))
    for i, (ax, h, w) in enumerate(zip(axes, hists, weights), start=1):
        width = (h.labels[1] - h.labels[0]) if len(h.labels) > 1 else 1.0
        ax.bar(h.labels, h.data, width=width * 0.9, color="tab:blue")
        ax.set_title(f"layer {i}: {w.shape[0]} x {w.shape[1] - 1} weights")
        ax.set_xlabel("weight value")
        ax.set_ylabel("count")
        ax.grid(True, alpha=0.3)
    fig.suptitle(title or "weight histograms (bias excluded)")
    return _save(fig, path)


def first_layer_tiles(net):
    """(tiles of shape (units, channels, h, w), a description) of the first layer's weights."""
    layer, w = net.layers[1], without_bias(net.weights[0])
    spec = layer.spec()
    fmap = spec.get("feature_map") or spec.get("feature-map")
    if fmap:  # a convolution layer: its kernels
        fw, fh = fmap["size"]
        channels = w.shape[1] // (fw * fh)
        return w.reshape(w.shape[0], channels, fh, fw), f"{w.shape[0]} kernels {fw}x{fh}"
    fieldsize = net.layers[0].fieldsize  # [k, w, h]; else divisors(n): 784 -> 28 x 28
    channels, fw, fh = fieldsize if fieldsize is not None else [1] + divisors(net.n_inputs)
    return w.reshape(w.shape[0], channels, fh, fw), f"{w.shape[0]} units, inputs as {fw}x{fh} images"


def _mosaic(tiles, ncols):
    """The tiles (channels side by side) in a grid with 1-pixel NaN gaps."""
    n, channels, h, w = tiles.shape
    tw = channels * (w + 1) - 1
    nrows = math.ceil(n / ncols)
    out = np.full((nrows * (h + 1) - 1, ncols * (tw + 1) - 1), np.nan)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, ncols)
        for k in range(channels):
            x0 = c * (tw + 1) + k * (w + 1)
            out[r * (h + 1):r * (h + 1) + h, x0:x0 + w] = tile[k]
    return out


def plot_first_layer(net, path, max_tiles=MAX_TILES, title=None):
    """The first layer's weights drawn as images: one tile per unit (or kernel)."""
    tiles, what = first_layer_tiles(net)
    shown = tiles[:max_tiles].astype(np.float64)
    ncols = math.ceil(math.sqrt(len(shown)))
    image = _mosaic(shown, ncols)
    vmax = float(np.nanpercentile(np.abs(image), 99.5)) or 1.0  # a few extremes would wash it out
    fig = _figure(TILES_FIGSIZE)
    ax = fig.add_subplot(1, 1, 1)
    import matplotlib
    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="white")
    im = ax.imshow(image, cmap=cmap, vmin=-vmax, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    more = f" (first {len(shown)} of {len(tiles)})" if len(tiles) > len(shown) else ""
    ax.set_title(title or f"first layer weights: {what}{more}")
    fig.colorbar(im, ax=ax, shrink=0.8, label="weight (red > 0, blue < 0; clipped at the 99.5th percentile)")
    return _save(fig, path)


def plot_net(net, out_dir, prefix=""):
    """Write every plot of ``net`` into ``out_dir``; return the paths written."""
    out = pathlib.Path(out_dir)
    name = net.header.get("name")
    label = f" ({name})" if name else ""
    paths = []
    stats = net.stats
    if stats is not None and stats.epochs:
        paths.append(plot_errors(stats, out / f"{prefix}errors.png", f"error per epoch{label}"))
    paths.append(plot_weight_histograms(net.weights, out / f"{prefix}weight-histograms.png",
                                        title=f"weight histograms, bias excluded{label}"))
    paths.append(plot_first_layer(net, out / f"{prefix}first-layer.png"))
    return paths
