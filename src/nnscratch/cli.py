"""The ``nnscratch`` command: train, evaluate, backends.

A mistake the user can make (a bad option, a missing or corrupt file, an unavailable backend)
prints one line on stderr and exits with code 2; a diverging run exits with code 3.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .errors import NNScratchError

__all__ = ["main", "build_parser"]

DEFAULT_MODEL_PATH = "nnscratch-model.npz"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line on stderr (exit 2), not usage plus error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


# --- option types: each rejects an impossible value with one sentence ---------------------

def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _hidden_sizes(text: str) -> tuple[int, ...]:
    try:
        return tuple(_positive_int(part) for part in text.split(","))
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected positive layer sizes separated by commas (e.g. 128 or 256,64), "
            f"got {text!r}") from None


def _batch_size(text: str) -> int | None:
    return None if text == "full" else _positive_int(text)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _momentum(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number from 0 up to (not including) 1, "
                                         f"got {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


# --- commands --------------------------------------------------------------------------------

def _writable_target(path: str) -> Path:
    """Check before training, not after it, that the model can be written where asked."""
    target = Path(path)
    if target.is_dir():
        raise NNScratchError(f"cannot write the model to {path}: it is a folder")
    folder = target.parent
    if not folder.is_dir():
        raise NNScratchError(f"cannot write the model to {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise NNScratchError(f"cannot write the model to {path}: folder {folder} is not writable")
    return target


def _run_train(args: argparse.Namespace) -> int:
    from .data import load_mnist
    from .train import ProgressPrinter, train

    target = _writable_target(args.out)
    mnist = load_mnist(args.data)
    print(f"data: {mnist.source}", flush=True)
    printer = None if args.quiet else ProgressPrinter(sys.stdout, every=args.log_every)
    result = train(mnist, backend=args.backend, hidden=args.hidden, epochs=args.epochs,
                   batch_size=args.batch_size, lr=args.lr, momentum=args.momentum,
                   seed=args.seed, dtype=args.dtype, init=args.init, progress=False,
                   callback=printer)
    result.save(target)
    last, epochs = result.history[-1], len(result.history)
    print(f"test accuracy: {last.test_accuracy:.2%} (loss {last.test_loss:.4f}) after {epochs} "
          f"epoch{'s' * (epochs != 1)} on {result.model.backend.name}; model saved to {target}")
    if mnist.is_sample:
        print("note: trained on the small bundled sample, not the full MNIST (see 'data:' above)")
    return 0


def _run_evaluate(args: argparse.Namespace) -> int:
    from .data import load_mnist
    from .model import load_model

    model = load_model(args.model, backend=args.backend)
    mnist = load_mnist(args.data)
    scores = model.evaluate(mnist.x_test, mnist.y_test)
    sizes = "-".join(map(str, model.layer_sizes))
    print(f"model: {args.model} ({sizes}, {model.dtype}, evaluated on {model.backend.name})")
    print(f"data: {mnist.source}")
    print(f"test accuracy: {scores['accuracy']:.2%} (loss {scores['loss']:.4f}) "
          f"on {scores['n']:,} images")
    return 0


def _run_compare(args: argparse.Namespace) -> int:
    from .compare import compare_backends, trajectory_tolerance
    from .data import load_mnist

    names = args.backends
    mnist = load_mnist(args.data)
    print(f"data: {mnist.source}")
    sizes = "-".join(map(str, (784, *args.hidden, 10)))
    batch = "full batch" if args.batch_size is None else f"batch {args.batch_size}"
    settings = dict(steps=args.steps, dtype=args.dtype, hidden=args.hidden,
                    batch_size=args.batch_size, lr=args.lr, momentum=args.momentum,
                    seed=args.seed)
    agree = True
    for other in names[1:]:
        print(f"\n{other} against {names[0]} (the reference): {sizes}, {args.dtype}, {batch}, "
              f"lr {args.lr:g}, momentum {args.momentum:g}, seed {args.seed}, {args.steps} steps")
        result = compare_backends(names[0], other, mnist, **settings)
        print(f"{'steps':>11}  {'loss diff':>9}  {'param diff':>10}  {'allowed':>8}")
        for first, last in result.step_ranges():
            loss, params = result.worst(first, last)
            allowed = trajectory_tolerance(args.dtype, last)
            steps = str(first) if first == last else f"{first}-{last}"
            verdict = "ok" if max(loss, params) <= allowed else "TOO FAR"
            print(f"{steps:>11}  {loss:9.1e}  {params:10.1e}  {allowed:8.1e}  {verdict}")
        gap = 100 * (result.other_accuracy - result.reference_accuracy)
        print(f"test accuracy after {args.steps} steps: {names[0]} "
              f"{result.reference_accuracy:.2%}, {other} {result.other_accuracy:.2%} "
              f"({gap:+.2f} points)")
        agree = agree and not result.failures()
    if agree:
        print("\nagree: every difference is within its tolerance")
        return 0
    print("\nDISAGREE: some differences exceed their tolerance. A wrong kernel shows from step 1; "
          "differences that start tiny and grow by orders of magnitude mean the run amplifies "
          "rounding (a large learning rate or momentum): try fewer --steps or a smaller --lr.")
    return 1


def _backend_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if len(names) < 2:
        raise argparse.ArgumentTypeError(f"expected at least two backend names separated by "
                                         f"commas (e.g. numpy,numba), got {text!r}")
    return names


def _run_backends(args: argparse.Namespace) -> int:
    from .backend import available_backends

    infos = available_backends().values()
    width = max(len(info.name) for info in infos)
    for info in infos:
        status = "available  " if info.available else "unavailable"
        print(f"{info.name:<{width}}  {status}  {info.detail}")
    return 0


# --- the parser ------------------------------------------------------------------------------

DATA_HELP = ("folder with the four MNIST IDX files (.gz or raw); default: $NNSCRATCH_DATA, "
             "then the user cache, then the small sample bundled with nnscratch")
BACKEND_HELP = "array backend (see 'nnscratch backends'); default: $NNSCRATCH_BACKEND or numpy"


def _add_train(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "train", help="train a model and write it to a file",
        description="Train an MLP on MNIST, print a line per epoch and the final test accuracy, "
                    "and write the model file (only once training has finished).")
    p.add_argument("--data", metavar="PATH", help=DATA_HELP)
    p.add_argument("--backend", metavar="NAME", help=BACKEND_HELP)
    p.add_argument("--hidden", type=_hidden_sizes, default=(128,), metavar="SIZES",
                   help="hidden layer sizes, comma-separated (default: 128)")
    p.add_argument("--epochs", type=_positive_int, default=5, metavar="N",
                   help="passes over the training set (default: 5)")
    p.add_argument("--batch-size", type=_batch_size, default=128, metavar="N|full",
                   help="mini-batch size, or 'full' for full-batch gradient descent, one step "
                        "per epoch (default: 128)")
    p.add_argument("--lr", type=_positive_float, default=0.1, help="learning rate (default: 0.1)")
    p.add_argument("--momentum", type=_momentum, default=0.0,
                   help="SGD momentum in [0, 1) (default: 0, plain SGD)")
    p.add_argument("--seed", type=_seed, default=0,
                   help="seed for the initial weights and the batch order (default: 0)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="floating-point type of the parameters (default: float32)")
    p.add_argument("--init", choices=("he", "xavier", "seed"), default="he",
                   help="weight initialisation: he, xavier, or seed (uniform in [0, 0.01), as in "
                        "the blog posts) (default: he)")
    p.add_argument("--out", default=DEFAULT_MODEL_PATH, metavar="PATH",
                   help=f"where to write the model file (default: {DEFAULT_MODEL_PATH})")
    p.add_argument("--log-every", type=_positive_int, default=1, metavar="N",
                   help="print every N-th epoch's line; the first and last are always printed "
                        "(default: 1)")
    p.add_argument("--quiet", action="store_true",
                   help="print only the data source and the final result")
    p.set_defaults(run=_run_train)


def _add_compare(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "compare", help="train on several backends in lockstep and report how far they drift",
        description="Train the same model from the same seed on the same batches on each "
                    "backend, compare the batch loss and every parameter after every step with "
                    "the first backend's, and print the largest relative differences per range "
                    "of steps against the tolerances the agreement suite uses. Exits with 1 if "
                    "any difference exceeds its tolerance.")
    p.add_argument("--backends", type=_backend_list, required=True, metavar="A,B[,...]",
                   help="backends to compare; the first is the reference (e.g. numpy,numba)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="floating-point type (default: float32)")
    p.add_argument("--steps", type=_positive_int, default=300, metavar="N",
                   help="training steps to compare (default: 300)")
    p.add_argument("--data", metavar="PATH", help=DATA_HELP)
    p.add_argument("--hidden", type=_hidden_sizes, default=(128,), metavar="SIZES",
                   help="hidden layer sizes, comma-separated (default: 128)")
    p.add_argument("--batch-size", type=_batch_size, default=128, metavar="N|full",
                   help="mini-batch size, or 'full' (default: 128)")
    p.add_argument("--lr", type=_positive_float, default=0.1, help="learning rate (default: 0.1)")
    p.add_argument("--momentum", type=_momentum, default=0.0,
                   help="SGD momentum in [0, 1) (default: 0)")
    p.add_argument("--seed", type=_seed, default=0, help="seed (default: 0)")
    p.set_defaults(run=_run_compare)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``nnscratch`` command."""
    parser = _Parser(prog="nnscratch",
                     description="Train and evaluate MNIST digit classifiers on array backends.")
    parser.add_argument("--version", action="version", version=f"nnscratch {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(commands)
    p = commands.add_parser("evaluate", help="report a model file's test accuracy and loss",
                            description="Load a model file and report its accuracy and loss on "
                                        "the MNIST test set.")
    p.add_argument("model", metavar="MODEL", help="a model file written by 'nnscratch train'")
    p.add_argument("--data", metavar="PATH", help=DATA_HELP)
    p.add_argument("--backend", metavar="NAME", help=BACKEND_HELP)
    p.set_defaults(run=_run_evaluate)
    _add_compare(commands)
    p = commands.add_parser("backends", help="list the backends and whether they can run here",
                            description="List every known backend: available, or why not and "
                                        "how to install it.")
    p.set_defaults(run=_run_backends)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except NNScratchError as exc:
        print(f"nnscratch {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"nnscratch {args.command}: interrupted; nothing was written", file=sys.stderr)
        return 130
