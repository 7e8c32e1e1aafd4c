"""The command line: ``synaptic train | evaluate | info | plot | demo | config``.

Errors in the arguments, and the ValueError/TypeError/OSError the library raises for them,
give a one-line message on stderr and exit code 2 (never a traceback).  Ctrl-C during
``train`` stops after the current batch, still saves when ``--save`` was given, and exits 130.
"""
import argparse
import concurrent.futures
import json
import sys
import warnings

import numpy as np

EXIT_USAGE, EXIT_INTERRUPTED = 2, 130


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error (the usage is one ``--help`` away)."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _arch(text):
    try:
        units = [int(u) for u in text.split("-")]
    except ValueError:
        units = []
    if len(units) < 2 or min(units) < 1:
        raise argparse.ArgumentTypeError(f"expected layer sizes like 784-100-10, got {text!r}")
    return units


def _json_file(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as err:
        raise argparse.ArgumentTypeError(f"cannot read {path}: {err.strerror}") from None
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{path} is not valid JSON: {err}") from None


def _json_params(text):
    if text.startswith("@"):
        value = _json_file(text[1:])
    else:
        try:
            value = json.loads(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(f"not valid JSON ({err}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object of training params, got {text!r}")
    return value


def _names(text):
    return [t.strip() for t in text.split(",") if t.strip()]


def _stat_kinds(text):
    """``--stats``: error kinds, or ``none`` / ``""`` for no per-epoch evaluation."""
    kinds = _names(text)
    return [] if kinds in ([], ["none"]) else kinds


# What the command line trains with unless told otherwise: the demo's recipe for backprop (the
# library keeps the original's defaults, learning rate 0.01 without momentum, at which a
# 784-100-10 net stays at chance on MNIST for many epochs).  The other algorithms learn MNIST
# with the library's defaults.
CLI_DEFAULTS = {"backprop": {"learning_rate": {"epsilon": 0.5}, "momentum": {"alpha": 0.9}}}

# Option name -> where it goes in the training params.
PARAM_OPTIONS = {
    "error_fn": ("error_fn",), "lr": ("learning_rate", "epsilon"),
    "adaptive": ("learning_rate", "adaptive"), "ming": ("learning_rate", "ming"),
    "maxg": ("learning_rate", "maxg"), "momentum": ("momentum", "alpha"),
    "alpha_start": ("momentum", "alpha_start"), "alpha_step": ("momentum", "alpha_step"),
    "nesterov": ("momentum", "nesterov"), "rprop_mins": ("rprop", "mins"),
    "rprop_maxs": ("rprop", "maxs"), "eta_plus": ("rprop", "eta_plus"),
    "eta_minus": ("rprop", "eta_minus"), "step_init": ("rprop", "step_init"),
    "rmsprop_alpha": ("rmsprop", "alpha"), "rmsprop_eps": ("rmsprop", "eps"),
}


def build_parser():
    from .training.params import ALGOS
    parser = Parser(prog="synaptic", description="synaptic neural networks")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train a 784-100-10 net on MNIST digits")
    demo.add_argument("--epochs", type=int, default=10)
    demo.add_argument("--seed", type=int, default=1)
    sub.add_parser("config", help="show the backend, threads and BLAS in use")

    t = sub.add_parser("train", help="train a net on a data set, with a progress display")
    net = t.add_mutually_exclusive_group(required=True)
    net.add_argument("--arch", type=_arch, help="layer sizes, e.g. 784-100-10")
    net.add_argument("--layers", type=_json_file, metavar="FILE",
                     help="a JSON file with the list of layer specs (e.g. a conv net)")
    net.add_argument("--resume", metavar="NAME", help="continue training the saved net NAME")
    t.add_argument("--act", type=_names, help="with --arch: one activation for every layer or "
                   "one per layer (default: sigmoid hidden layers, a softmax output)")
    t.add_argument("--algo", choices=ALGOS, help="training algorithm (default backprop)")
    t.add_argument("--error-fn", help="error function (default: the algorithm's)")
    t.add_argument("--lr", type=float, help="learning rate epsilon (backprop: default 0.5)")
    t.add_argument("--adaptive", action="store_true", default=None,
                   help="adaptive per-weight learning-rate gains (with --ming/--maxg)")
    t.add_argument("--ming", type=float, help="smallest gain (0.01 with --adaptive)")
    t.add_argument("--maxg", type=float, help="largest gain (10.0 with --adaptive)")
    t.add_argument("--momentum", type=float, metavar="ALPHA",
                   help="momentum alpha (backprop: default 0.9; 0 for none)")
    t.add_argument("--alpha-start", type=float, help="momentum schedule: first alpha")
    t.add_argument("--alpha-step", type=float, help="momentum schedule: alpha increase per step")
    t.add_argument("--nesterov", action="store_true", default=None, help="Nesterov momentum")
    reg = t.add_mutually_exclusive_group()
    reg.add_argument("--l1", type=float, metavar="LAMBDA", help="L1 regularization")
    reg.add_argument("--l2", type=float, metavar="LAMBDA", help="L2 regularization")
    for flag, text in (("--rprop-mins", "R-prop: smallest step"), ("--rprop-maxs", "R-prop: largest step"),
                       ("--eta-plus", "R-prop: step growth"), ("--eta-minus", "R-prop: step shrink"),
                       ("--step-init", "R-prop: first step"), ("--rmsprop-alpha", "RMSprop: decay"),
                       ("--rmsprop-eps", "RMSprop: epsilon")):
        t.add_argument(flag, type=float, help=text)
    t.add_argument("--params", type=_json_params, metavar="JSON",
                   help="more training params as a JSON object (or @FILE), merged last")
    t.add_argument("--stats", type=_stat_kinds, metavar="KINDS",
                   help="error kinds to record each epoch (default: the error fn and accuracy; "
                        "none or \"\" for no per-epoch evaluation)")
    _data_options(t, "mnist10k")
    t.add_argument("--batch", type=int, help="re-batch the training part in batches of N")
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--dtype", choices=("float32", "float64"), help="default float64")
    t.add_argument("--seed", type=int, help="seed of the initial weights")
    t.add_argument("--threads", type=int, help="threads for the kernels and BLAS")
    t.add_argument("--save", metavar="NAME", help="save the trained net as data/neuralnet.NAME")
    t.add_argument("--quiet", action="store_true", help="no progress display, no epoch lines")
    t.add_argument("--distributed", action="store_true",
                   help="one rank of a data-parallel training under mpiexec (synaptic[mpi]): "
                        "each rank trains on its shard; rank 0 prints and saves")
    t.add_argument("--deterministic", action="store_true",
                   help="with --distributed: sums in rank order (bitwise reproducible)")

    e = sub.add_parser("evaluate", help="accuracy, confusion matrix, per-class figures")
    e.add_argument("name", help="a saved net")
    _data_options(e, "the one it was trained on")
    e.add_argument("--part", choices=("valid", "train", "all"),
                   help="which samples (default: valid when there is a validation set)")
    i = sub.add_parser("info", help="a saved net's architecture, parameters and stats")
    i.add_argument("name", help="a saved net")
    p = sub.add_parser("plot", help="learning curves, weight histograms, first-layer weights (PNG)")
    p.add_argument("name", help="a saved net")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the PNG files")
    return parser


def _data_options(parser, default):
    parser.add_argument("--data", metavar="NAME", help="mnist10k, mnist5k or a saved training "
                        f"set (default: {default}; with a saved net, the one it was trained on)")
    parser.add_argument("--scale", action="store_true", default=None,
                        help="divide the samples by 255 (default: as the saved net was trained)")


def _data_choice(args, net):
    """(data set name, scale) from the options, else as recorded in the net, else mnist10k."""
    seen = net.header.get("data") or {}
    name = args.data or seen.get("name") or net.header.get("name") or "mnist10k"
    return name, bool(seen.get("scale", False) if args.scale is None else args.scale)


# train --------------------------------------------------------------------------------

def _training_params(args):
    params = {}
    for option, keys in PARAM_OPTIONS.items():
        value = getattr(args, option)
        if value is not None:
            node = params
            for key in keys[:-1]:
                node = node.setdefault(key, {})
            node[keys[-1]] = value
    lr = params.get("learning_rate", {})
    if lr.get("adaptive"):
        lr.setdefault("ming", 0.01)
        lr.setdefault("maxg", 10.0)
    for kind in ("l1", "l2"):
        if getattr(args, kind) is not None:
            params["regularization"] = {"kind": kind, "lambda": getattr(args, kind)}
    if args.stats is not None:
        params["stats"] = {"errorkinds": args.stats}
    from .training.params import deep_merge, normalize
    return deep_merge(params, normalize(args.params or {}))


def _make_net(args):
    from . import mlp, neural_net, training
    from .persist import load_neural_net
    from .training.params import deep_merge
    params = _training_params(args)
    if args.resume:
        if params or args.algo or args.act or args.dtype or args.seed is not None:
            raise ValueError("--resume continues the saved net as it is: its training options, "
                             "activations, dtype and seed cannot be changed")
        return load_neural_net(args.resume)
    algo = args.algo or "backprop"
    params = deep_merge(CLI_DEFAULTS.get(algo, {}), params)
    if "stats" not in params:
        error_fn = training(algo, params).params["error_fn"]
        params["stats"] = {"errorkinds": [error_fn, "accuracy"]}
    kw = {"dtype": np.dtype(args.dtype or "float64"), "seed": args.seed}
    if args.layers is not None:
        if args.act:
            raise ValueError("--act goes with --arch; a --layers file names its activations")
        return neural_net(args.layers, training(algo, params), **kw)
    acts = args.act or ["sigmoid"] * (len(args.arch) - 2) + ["softmax"]
    return mlp(args.arch, acts[0] if len(acts) == 1 else acts, training(algo, params), **kw)


def _load_data(name, scale, dtype, batch=None):
    from . import datasets
    trset = datasets.load_training_set(name, scale=bool(scale), dtype=dtype)
    return trset if batch is None else trset.rebatch(batch)


def _wait(future):
    while True:  # a timeout keeps the main thread responsive to Ctrl-C
        try:
            return future.result(timeout=0.2)
        except concurrent.futures.TimeoutError:
            continue


def cmd_train(args, out):
    from . import set_num_threads, stop_training, train
    from .persist import _path, save_neural_net
    from .progress import watch_progress
    from .training.stats import accuracy
    if args.save is not None:
        _path("neuralnet", args.save)  # a bad name fails now, not after the training
    if args.deterministic and not args.distributed:
        raise ValueError("--deterministic goes with --distributed")
    if args.distributed:
        from . import distributed
        distributed.init(deterministic=args.deterministic, threads=args.threads or 1)
        if not distributed.is_root():  # the other ranks train silently
            out, args.quiet = (lambda line: None), True
    elif args.threads is not None:
        set_num_threads(args.threads)
    net = _make_net(args)
    name, scale = _data_choice(args, net)
    trset = _load_data(name, scale, net.dtype, args.batch)
    name = trset.header.get("name") or name  # mnist5k when mnist10k fell back to it
    net.header["data"] = {"name": name, "scale": scale}
    valid = 0 if trset.valid is None else len(trset.valid)
    out(f"data: {name}{' (scaled)' if scale else ''}: {len(trset.x)} training samples "
        f"in {trset.nbatches} batches, {valid} validation samples ({trset.source})")
    if not trset.header.get("scaled") and trset.x.size and trset.x.max() > 1:
        print(f"note: the samples go up to {trset.x.max():g}; sigmoid units saturate on raw "
              f"pixels, --scale divides them by 255", file=sys.stderr)
    out(f"net: {net}")
    out(f"training: {net.training.algo} {json.dumps(net.training.params)}")
    use_tqdm = None if sys.stderr.isatty() else False
    interrupted = False
    with watch_progress(net, trset, args.epochs, use_tqdm=use_tqdm, quiet=args.quiet):
        future = train(net, trset, args.epochs)
        try:
            _wait(future)
        except KeyboardInterrupt:
            interrupted = True
            print("interrupted: stopping after the current batch", file=sys.stderr)
            stop_training(net)
            _wait(future)
    if trset.valid is not None and len(trset.valid):
        out(f"validation accuracy: {accuracy(net, trset.valid):.4f}")
    if args.save:
        name = save_neural_net(net, args.save)
        out(f"saved the net as {name!r}")
    return EXIT_INTERRUPTED if interrupted else 0


# evaluate, info, plot -----------------------------------------------------------------

def _samples(trset, part, name):
    """(x, y) of the ``part`` ("valid", "train" or "all") of ``trset``."""
    if part == "valid" and trset.valid is None:
        raise ValueError(f"training set {name!r} has no validation set; use --part train")
    if part == "valid":
        return trset.valid.x, trset.valid.y
    if part == "train" or trset.valid is None:
        return trset.x, trset.y
    return np.concatenate([trset.x, trset.valid.x]), np.concatenate([trset.y, trset.valid.y])


def confusion_matrix(net, trset, x, y):
    """(the net's labels, counts[true, predicted]) in the order of the net's outputs."""
    from . import estimate
    labels = list(net.labels) if net.labels is not None else list(range(net.n_outputs))
    data_labels = list(trset.labels) if net.labels is not None else list(range(y.shape[1]))
    unknown = [lab for lab in data_labels if lab not in labels]
    if unknown:
        raise ValueError(f"the data has labels {unknown} the net was not trained with "
                         f"(its labels: {labels})")
    position = {lab: i for i, lab in enumerate(labels)}
    truth = np.array([position[lab] for lab in data_labels])[np.argmax(y, axis=1)]
    predicted = [position[p.item() if isinstance(p, np.generic) else p] for p in estimate(net, x)]
    counts = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(counts, (truth, np.array(predicted, dtype=np.intp)), 1)
    return labels, counts


def cmd_evaluate(args, out):
    from .persist import load_neural_net
    net = load_neural_net(args.name)
    name, scale = _data_choice(args, net)
    trset = _load_data(name, scale, net.dtype)
    part = args.part or ("valid" if trset.valid is not None else "train")
    labels, counts = confusion_matrix(net, trset, *_samples(trset, part, name))
    total = int(counts.sum())
    out(f"{args.name} on {name} ({part}, {total} samples{', scaled' if scale else ''})")
    out(f"accuracy: {np.trace(counts) / max(total, 1):.4f}")
    out("confusion matrix (rows: true label, columns: predicted label)")
    names = [str(lab) for lab in labels]
    width = max(5, max(len(s) for s in names), len(str(counts.max())))
    out(" " * width + " " + " ".join(s.rjust(width) for s in names))
    for s, row in zip(names, counts):
        out(s.rjust(width) + " " + " ".join(str(v).rjust(width) for v in row))
    out(f"{'label':>{width}} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>9}")
    for i, s in enumerate(names):
        tp, predicted, support = counts[i, i], counts[:, i].sum(), counts[i].sum()
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out(f"{s:>{width}} {precision:>9.4f} {recall:>9.4f} {f1:>9.4f} {support:>9d}")
    return 0


def cmd_info(args, out):
    from .persist import _path, load_neural_net
    from .progress import epoch_line
    net = load_neural_net(args.name)
    out(f"neuralnet {args.name} ({_path('neuralnet', args.name)})")
    out("layers:")
    for i, layer in enumerate(net.layers):
        spec = {k: v for k, v in layer.spec().items() if k != "type"}
        weights = f"  weights {net.weights[i - 1].shape[0]} x {net.weights[i - 1].shape[1]}" if i else ""
        out(f"  {i}: {layer.kind} {json.dumps(spec)}{weights}")
    out(f"parameters: {net.n_params} ({net.dtype.name})")
    out(f"labels: {net.labels}")
    data = net.header.get("data") or {}
    if data or net.header.get("name"):
        scaled = " (scaled)" if data.get("scale") else ""
        out(f"trained on: {data.get('name') or net.header.get('name')}{scaled}")
    t = net.training
    if t is None:
        out("training: none")
        return 0
    out(f"training: {t.algo} {json.dumps(t.params)}")
    out(f"optimiser state: {', '.join(map(_describe_state, t.state.items())) or 'none'}")
    stats = t.stats
    if stats is None or not stats.epochs:
        out("epochs: 0")
        return 0
    out(f"epochs: {stats.epochs}, {sum(stats.seconds):.2f} s of training")
    out(f"last {epoch_line(stats)}")
    for kind, values in stats.val_err.items():
        if values:
            best = int(np.argmax(values) if kind == "accuracy" else np.argmin(values))
            out(f"best validation {kind}: {values[best]:.4f} (epoch {best + 1})")
    return 0


def _describe_state(item):
    key, value = item
    if isinstance(value, list):
        return f"{key} ({len(value)} arrays)"
    if isinstance(value, np.ndarray):
        return f"{key} (array {list(value.shape)})"
    return f"{key} {value!r}"


def cmd_plot(args, out):
    from .persist import load_neural_net
    from .plots import plot_net
    for path in plot_net(load_neural_net(args.name), args.out):
        out(f"wrote {path}")
    return 0


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "info": cmd_info, "plot": cmd_plot}


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"synaptic: warning: {message}", file=file or sys.stderr)


def main(argv=None):
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning  # one line, not the warning's source line
        return _main(argv)


def _main(argv):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import run
        _, acc = run(epochs=args.epochs, seed=args.seed)
        return 0 if acc >= 0.92 else 1
    if args.command == "config":
        from . import show_config
        show_config()
        return 0
    prog = f"synaptic {args.command}"
    try:
        return COMMANDS[args.command](args, lambda line: print(line, flush=True))
    except (ValueError, TypeError, OSError, ImportError, RuntimeError) as err:
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"{prog}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
