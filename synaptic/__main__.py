"""``python -m synaptic demo`` (also the ``synaptic`` script)."""
import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="synaptic", description="synaptic neural networks")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train a 784-100-10 net on MNIST digits")
    demo.add_argument("--epochs", type=int, default=10)
    demo.add_argument("--seed", type=int, default=1)
    sub.add_parser("config", help="show the backend, threads and BLAS in use")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import run
        _, acc = run(epochs=args.epochs, seed=args.seed)
        return 0 if acc >= 0.92 else 1
    from . import show_config
    show_config()
    return 0


if __name__ == "__main__":
    sys.exit(main())
