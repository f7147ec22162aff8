"""The ``nnscratch`` command: train, evaluate, backends.

A mistake the user can make (a bad option, a missing or corrupt file, an unavailable backend)
prints one line on stderr and exits with code 2; a diverging run exits with code 3.
"""

from __future__ import annotations

import argparse
import inspect
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._fileio import os_reason
from ._signals import signal_name, terminate_as_interrupt
from ._version import __version__
from .data.datasets import DEFAULT_DATASET, dataset_names
from .errors import NNScratchError
from .settings import FLAG, POSITIVE_INT, STEP_SETTINGS, Rule, SettingsError, TrainSettings

if TYPE_CHECKING:
    from .training import TrainingInterrupted, TrainResult

__all__ = ["main", "build_parser"]

DEFAULT_MODEL_PATH = "nnscratch-model.npz"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line on stderr (exit 2), not usage plus error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


# --- options made from TrainSettings ---------------------------------------------------------

def _flag(name: str) -> str:
    """The command line's spelling of a setting: ``lr_min`` is ``--lr-min``."""
    return "--" + name.replace("_", "-")


def _option_type(rule: Rule) -> Callable[[str], Any]:
    """An argparse type that reads a setting and refuses, in one sentence, a value its rule
    does not accept."""
    def parse(text: str) -> Any:
        try:
            return rule.from_text(text)
        except (ValueError, TypeError):
            raise argparse.ArgumentTypeError(f"expected {rule.expected}, got {text!r}") from None
    return parse


def _shown_default(default: Any) -> str:
    if default is None:
        return "none"
    if isinstance(default, tuple):
        return ",".join(map(str, default))
    return f"{default:g}" if isinstance(default, float) else str(default)


def _setting_help(name: str) -> str:
    _, default, _, meta = next(item for item in TrainSettings.describe() if item[0] == name)
    return f"{meta['help']} (default: {meta['shown'] or _shown_default(default)})"


def _add_settings(p: argparse.ArgumentParser, names: Sequence[str]) -> None:
    """An option for each setting in ``names``, as TrainSettings declares it. An option not
    given is absent from the parsed arguments (its default is TrainSettings'), so a resumed
    run can tell what was given."""
    for name, default, rule, meta in TrainSettings.describe():
        if name not in names:
            continue
        if rule.accept is FLAG.accept:
            p.add_argument(_flag(name), action="store_true", default=argparse.SUPPRESS,
                           help=meta["help"])
        else:
            p.add_argument(_flag(name), type=_option_type(rule), choices=rule.choices,
                           default=argparse.SUPPRESS, metavar=meta["metavar"],
                           help=_setting_help(name))


def _given_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given on the command line, by name."""
    return {name: getattr(args, name) for name in TrainSettings.names() if hasattr(args, name)}


def _train_data(args: argparse.Namespace) -> tuple[str, str | None]:
    """The data set and path to train on: --dataset and --data, else for --resume the ones the
    run recorded. A --dataset other than the resumed run's is refused."""
    if not args.resume:
        return args.dataset or DEFAULT_DATASET, args.data
    from .runs import open_run_folder, read_config

    folder = open_run_folder(args.resume)
    config = read_config(folder)
    recorded = config.get("dataset", DEFAULT_DATASET)
    if args.dataset is not None and args.dataset != recorded:
        raise NNScratchError(f"the run in {folder} was trained on {recorded}, not "
                             f"{args.dataset}; leave --dataset out to resume it")
    return recorded, args.data or config.get("data")


def _table_data(args: argparse.Namespace) -> Any:
    """The data of a table (see nnscratch.data.tables), when --data is one: a CSV file with a
    header that is not MNIST's, or any CSV given with --label-column; or, for --resume, when
    the run recorded a table. Else None."""
    from .data.tables import looks_like_npz_table, looks_like_table, read_table_data

    if getattr(args, "resume", None):  # compare has no --resume
        return _resumed_table(args)
    for option, value in (("--label-column", args.label_column), ("--test-data",
                                                                  args.test_data)):
        if value is not None and args.data is None:
            raise NNScratchError(f"{option} needs --data naming a CSV table")
    path = None if args.data is None else Path(args.data)
    if path is not None and _is_file(path) and looks_like_npz_table(path):
        if args.label_column is not None or args.test_data is not None:
            raise NNScratchError(f"{path} is an .npz table: its labels are y_train (and "
                                 "y_test), so --label-column and --test-data do not apply")
        return read_table_data(path)
    if path is None or not _is_file(path) or (args.label_column is None
                                              and not looks_like_table(path)):
        if args.test_data is not None:
            raise NNScratchError(f"--test-data goes with a CSV table as --data; {args.data} "
                                 f"is not one (give --label-column if it is)")
        return None
    return read_table_data(path, args.label_column, args.test_data)


def _is_file(path: Path) -> bool:
    """Whether ``path`` is a file; False when it cannot be looked at (the reader that comes
    next says why)."""
    try:
        return path.is_file()
    except OSError:
        return False


def _resumed_table(args: argparse.Namespace) -> Any:
    """The table a resumed run was trained on, read as it was (its label column and test
    table), from --data or the path it recorded; None for a run that was not on a table."""
    from .runs import open_run_folder, read_config
    from .training import recorded_data

    if args.label_column is not None or args.test_data is not None:
        raise NNScratchError("--label-column and --test-data cannot be used with --resume: a "
                             "resumed run reads its table as it did the first time")
    config = read_config(open_run_folder(args.resume))
    return None if config.get("table") is None else recorded_data(config, args.data)


def _train_target(args: argparse.Namespace) -> str | None:
    """Where the run writes (None when resuming: it stays in its folder), checked up front."""
    from .runs import check_model_target, is_model_path

    if args.resume:
        if args.out is not None:
            raise NNScratchError("--out and --resume cannot be used together: a resumed run "
                                 "stays in its run folder")
        return None
    out = args.out or DEFAULT_MODEL_PATH
    if is_model_path(out):
        check_model_target(out)
    return out


def _run_train(args: argparse.Namespace) -> int:
    """Train an MLP (on MNIST unless the data say otherwise), print a line per epoch (with a
    progress bar in a terminal) and the final test accuracy, and write the model file (only once
    training has finished) or a run folder. Ctrl-C stops after the current step, saves a
    checkpoint in the run folder and exits with 130; a loss that becomes NaN, infinite or larger
    than 10,000 stops the run with exit code 3.
    """
    from .registry import get_backend
    from .callbacks import ProgressPrinter
    from .data import load_dataset
    from .training import TrainingInterrupted, train

    out = _train_target(args)
    options = _given_settings(args)
    backend = options.pop("backend", None)
    if not args.resume:
        TrainSettings(**options)  # an impossible combination fails before the data is read
    if backend is not None or not args.resume:
        get_backend(backend)  # an unknown or unavailable backend fails before the data loads
    mnist = _table_data(args) or load_dataset(*_train_data(args))
    print(f"data: {mnist.source}", flush=True)
    printer = None if args.quiet else ProgressPrinter(sys.stdout, every=args.log_every)
    try:
        result = train(mnist, backend=backend, progress=False, callback=printer, out=out,
                       resume=args.resume, **options)
    except TrainingInterrupted as stop:
        print(f"nnscratch train: {_interruption(stop)}", file=sys.stderr)
        return 128 + stop.signum
    _print_trained(result, out)
    if mnist.is_sample:
        print("note: trained on the small bundled sample, not the full MNIST (see 'data:' above)")
    return 0


def _interruption(stop: TrainingInterrupted) -> str:
    if stop.run_dir is None:
        return (f"{stop}; nothing was written (with --out FOLDER a run keeps a checkpoint "
                f"to resume from)")
    if stop.checkpoint is None and stop.finishing:
        return f"{stop}; the run in {stop.run_dir} had finished and its results are written"
    if stop.checkpoint is None:
        return f"{stop}; {stop.run_dir} has no checkpoint yet: no epoch had finished"
    saved = "the last checkpoint was kept" if stop.at_once else "checkpoint saved to"
    return (f"{stop}; {saved} {stop.checkpoint}; "
            f"resume with: nnscratch train --resume {stop.run_dir}")


def _print_trained(result: TrainResult, out: str | None) -> None:
    from .report import PLOT_HINT

    final, epochs = result.final, len(result.history)
    print(f"test accuracy: {final.test_accuracy:.2%} (loss {final.test_loss:.4f}) after {epochs} "
          f"epoch{'s' * (epochs != 1)} on {result.model.backend.name}")
    if result.best_epoch is not None:
        stopped = ", stopped early" if result.extra.get("stopped_early") else ""
        print(f"kept the parameters of epoch {result.best_epoch}, the best on the validation "
              f"images{stopped}")
    if result.run_dir is None:
        print(f"model saved to {out}")
        return
    report = result.extra["report"]
    print(f"run saved in {result.run_dir}: model {result.run_dir / 'model.npz'}, "
          f"report {report.path}")
    if not report.has_figures:
        print(f"the report has no figures: {PLOT_HINT}, then: nnscratch report {result.run_dir}")


def _run_report(args: argparse.Namespace) -> int:
    """Write report.html in a run folder from its files: training curves, the confusion matrix, the
    worst misclassified test digits, the first layer's weights and the settings, with the
    figures as PNG files beside it (they need matplotlib: pip install "nnscratch[plot]").
    Given a sweep folder, write the sweep's report.html from its results.csv and trials.
    """
    from .report import PLOT_HINT, build_report
    from .sweeps import build_sweep_report, is_sweep_folder

    if is_sweep_folder(args.folder):
        print(f"report written to {build_sweep_report(args.folder)}")
        return 0
    report = build_report(args.folder)
    print(f"report written to {report.path}")
    if report.has_figures:
        print("figures: " + ", ".join(str(path) for path in report.figures))
    else:
        print(f"the report has no figures: {PLOT_HINT}, then run this again")
    return 0


def _run_evaluate(args: argparse.Namespace) -> int:
    """Load a model file and report its accuracy and loss on the test set of MNIST (or of the
    data set named by --dataset), or on every row of a CSV table given as --data (a header,
    the model's feature columns and a label column), read raw as the model was trained."""
    from .data import load_dataset
    from .data.tables import looks_like_table, read_rows
    from .model import load_model

    model = load_model(args.model, backend=args.backend)
    path = None if args.data is None else Path(args.data)
    if path is not None and path.is_file() and looks_like_table(path):
        x, y = read_rows(path, model.layer_sizes[0])
        if y is None:
            raise NNScratchError(f"{path} has no label column to evaluate against")
        source, what = f"the {len(y):,} rows of the table {path}", "rows"
    else:
        mnist = load_dataset(args.dataset, args.data)
        x, y, source, what = mnist.x_test, mnist.y_test, mnist.source, "images"
    scores = model.evaluate(x, y)
    sizes = "-".join(map(str, model.layer_sizes))
    print(f"model: {args.model} ({sizes}, {model.dtype}, evaluated on {model.backend.name})")
    print(f"data: {source}")
    loss = scores["loss"]  # huge only for a model with huge weights: 1.23e+59, not 60 digits
    shown = f"{loss:.4f}" if loss < 1e6 else f"{loss:.4g}"
    print(f"test accuracy: {scores['accuracy']:.2%} (loss {shown}) on {scores['n']:,} {what}")
    return 0


def _run_compare(args: argparse.Namespace) -> int:
    """Train the same model from the same seed on the same batches on each backend, compare the
    batch loss and every parameter after every step with the first backend's, and print the
    largest relative differences per range of steps against the tolerances the agreement suite
    uses. Exits with 1 if any difference exceeds its tolerance.
    """
    from .compare import compare_backends
    from .data import load_dataset
    from .inputs import class_count

    names = args.backends
    s = TrainSettings(**_given_settings(args))
    mnist = _table_data(args) or load_dataset(args.dataset, args.data)
    print(f"data: {mnist.source}")
    sizes = "-".join(map(str, (mnist.x_train.shape[1], *s.hidden,
                               class_count(mnist.y_train, mnist.y_test))))
    batch = "full batch" if s.batch_size is None else f"batch {s.batch_size}"
    agree = True
    for other in names[1:]:
        print(f"\n{other} against {names[0]} (the reference): {sizes}, {s.dtype}, {batch}, "
              f"{s.optimizer}, lr {s.lr:g}, momentum {s.momentum:g}, seed {s.seed}, "
              f"{args.steps} steps")
        result = compare_backends(names[0], other, mnist, steps=args.steps, settings=s)
        print("\n".join(comparison_table(result)))
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


def comparison_table(result: Any) -> list[str]:
    """The lines of ``nnscratch compare``'s table: per decade of steps, the largest differences,
    the bound at the decade's last step, and whether every step kept within its own bound (the
    bound grows with the steps, so a step can fail though its decade's largest difference is
    within the decade's last bound)."""
    from .compare import trajectory_tolerance

    lines = [f"{'steps':>11}  {'loss diff':>9}  {'param diff':>10}  {'allowed':>8}"]
    failing = [d.step for d in result.failures()]
    for first, last in result.step_ranges():
        loss, params = result.worst(first, last)
        allowed = trajectory_tolerance(result.dtype, last)
        steps = str(first) if first == last else f"{first}-{last}"
        bad = [step for step in failing if first <= step <= last]
        verdict = f"TOO FAR from step {bad[0]}" if bad else "ok"
        lines.append(f"{steps:>11}  {loss:9.1e}  {params:10.1e}  {allowed:8.1e}  {verdict}")
    return lines


def _backend_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if len(names) < 2:
        raise argparse.ArgumentTypeError(f"expected at least two backend names separated by "
                                         f"commas (e.g. numpy,numba), got {text!r}")
    return names


def _run_backends(args: argparse.Namespace) -> int:
    """List every known backend: available, or why not and how to install it."""
    from .registry import available_backends

    infos = available_backends().values()
    width = max(len(info.name) for info in infos)
    for info in infos:
        status = "available  " if info.available else "unavailable"
        print(f"{info.name:<{width}}  {status}  {info.detail}")
    return 0


# --- the parser ------------------------------------------------------------------------------

DATA_HELP = ("where the data set is: a folder with the four IDX files (.gz or raw), "
             "mnist_train.csv and mnist_test.csv, Kaggle's train.csv or mnist.npz, or such a CSV "
             "or .npz file; default: $NNSCRATCH_DATA (MNIST only), then the user cache, then a "
             "download into it if NNSCRATCH_DOWNLOAD=1, then the small sample bundled with "
             "nnscratch (MNIST only) (see 'nnscratch data')")
DATASET_HELP = (f"the data set: {', '.join(dataset_names())} (default: {DEFAULT_DATASET}); "
                "with --data PATH, PATH holds that set's files")


def _add_dataset(p: argparse.ArgumentParser, default: str | None = DEFAULT_DATASET,
                 help: str = DATASET_HELP) -> None:
    p.add_argument("--dataset", choices=dataset_names(), default=default, metavar="NAME",
                   help=help)
BACKEND_HELP = _setting_help("backend")


def _add_data_options(p: argparse.ArgumentParser) -> None:
    """--data, --label-column and --test-data: where the data is, MNIST or a table."""
    p.add_argument("--data", metavar="PATH", help=DATA_HELP + "; or a CSV table: a header, "
                   "numeric feature columns and a label column (see --label-column)")
    p.add_argument("--label-column", metavar="NAME",
                   help="read --data as a table whose labels are in column NAME (a table's "
                        "default: a column named label, class, target or y, else the last "
                        "one); one row in seven is held out as the test set, stratified by "
                        "class, unless --test-data gives one")
    p.add_argument("--test-data", metavar="PATH",
                   help="with a table as --data: a CSV table with the same columns to test on "
                        "(instead of holding rows out)")


def _add_train(commands: argparse._SubParsersAction) -> None:
    p = _command(commands, "train", _run_train, help="train a model and write it to a file")
    _add_data_options(p)
    _add_dataset(p, None, DATASET_HELP + "; for --resume, the run's")
    _add_settings(p, TrainSettings.names())
    p.add_argument("--out", default=None, metavar="PATH",
                   help=f"a path ending in .npz: write just the model file there (default: "
                        f"{DEFAULT_MODEL_PATH}); any other path: a run folder, created, with the "
                        f"model (model.npz), config.json, metrics.csv, a checkpoint after every "
                        f"epoch and report.html; ending in / it makes a new run folder inside, "
                        f"named after the time and layer sizes")
    p.add_argument("--resume", metavar="RUN",
                   help="continue the run in folder RUN from its checkpoint with its saved "
                        "settings, bit-identical to an uninterrupted run on numpy, on the data "
                        "it recorded (the path it was given) unless --data names another copy")
    p.add_argument("--log-every", type=_option_type(POSITIVE_INT), default=1, metavar="N",
                   help="print every N-th epoch's line; the first and last are always printed "
                        "(default: 1)")
    p.add_argument("--quiet", action="store_true",
                   help="print only the data source and the final result")


def _add_compare(commands: argparse._SubParsersAction) -> None:
    p = _command(commands, "compare", _run_compare,
                 help="train on several backends in lockstep and report how far they drift")
    p.add_argument("--backends", type=_backend_list, required=True, metavar="A,B[,...]",
                   help="backends to compare; the first is the reference (e.g. numpy,numba)")
    p.add_argument("--steps", type=_option_type(POSITIVE_INT), default=300, metavar="N",
                   help="training steps to compare (default: 300)")
    _add_data_options(p)
    _add_dataset(p)
    _add_settings(p, (*STEP_SETTINGS, "scaling"))


def _add_report(commands: argparse._SubParsersAction) -> None:
    p = _command(commands, "report", _run_report,
                 help="rebuild the report.html of a run folder or a sweep folder")
    p.add_argument("folder", metavar="RUN", help="a run folder written by 'nnscratch train "
                                                 "--out RUN', or a sweep folder")


def _run_sweep(args: argparse.Namespace) -> int:
    """Run the trials of a sweep spec (a TOML file: fixed settings, a grid, random choices,
    seeds, successive halving, the data) on Dask: a local cluster of one worker process per
    core by default, or the running cluster whose scheduler --scheduler (or
    $NNSCRATCH_SCHEDULER) names. Each trial is a run folder in OUT/trials/; OUT/results.csv
    gets a row per trial as trials finish, and OUT/report.html compares them at the end.
    A trial that fails (diverges, say) is recorded as failed and the others go on; one whose
    worker dies runs again from its last checkpoint. Ctrl-C stops the sweep (exit 130),
    keeping the finished trials; --resume OUT runs the rest. Needs Dask:
    pip install "nnscratch[sweep]".
    """
    from .sweep_spec import read_spec
    from .sweeps import SweepInterrupted, sweep

    if args.resume is not None and (args.spec is not None or args.out is not None):
        raise NNScratchError("--resume takes the sweep folder alone: its spec and folder are "
                             "the ones it started with (leave out SPEC and --out)")
    if args.resume is None and args.spec is None:
        raise NNScratchError("give a sweep spec (a TOML file), or --resume FOLDER")
    if args.dry_run:
        if args.spec is None:
            raise NNScratchError("--dry-run lists the trials of a SPEC; give one")
        spec = read_spec(args.spec)
        print(spec.table())
        halving = (f"; successive halving from {spec.halving['min_epochs']} epochs, keeping "
                   f"1/{spec.halving['eta']} at each rung" if spec.halving else "")
        print(f"{len(spec.trials)} trials ({spec.search} search{halving}); nothing was run")
        return 0
    if args.resume is None and args.out is None:
        raise NNScratchError("--out is needed: the folder to write the sweep's trials and "
                             "results in (e.g. --out sweeps/NAME)")
    try:
        result = sweep(args.spec, args.out, resume=args.resume, scheduler=args.scheduler,
                       workers=args.workers, threads_per_trial=args.threads_per_trial,
                       progress=False if args.quiet else None)
    except SweepInterrupted as stop:
        print(f"nnscratch sweep: {stop}; the finished trials are kept in {stop.folder}; "
              f"run the rest with: nnscratch sweep --resume {stop.folder}", file=sys.stderr)
        return 128 + stop.signum
    _print_swept(result)
    return 0


def _print_swept(result: Any) -> None:
    counts: dict[str, int] = {}
    for row in result.rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    print(f"{len(result.rows)} trials: " + ", ".join(f"{n} {status}"
                                                     for status, n in counts.items()))
    best = result.best
    if best is not None:
        part = "validation" if result.ranked_by == "final_val_accuracy" else "test"
        print(f"best: trial {best['trial']}, {part} accuracy {best[result.ranked_by]:.2%} "
              f"(run folder {result.folder / 'trials' / best['trial']})")
    for row in result.rows:
        if row["status"] == "failed":
            print(f"failed: trial {row['trial']}: {row['reason']}")
    print(f"results: {result.folder / 'results.csv'}; report: {result.report}")


def _add_sweep(commands: argparse._SubParsersAction) -> None:
    p = _command(commands, "sweep", _run_sweep,
                 help="run many trainings (a grid, random search, successive halving) on Dask")
    p.add_argument("spec", nargs="?", metavar="SPEC", help="the sweep spec, a TOML file "
                   "(see docs/guide/sweeps.md)")
    p.add_argument("--out", metavar="FOLDER", help="the sweep folder to create (e.g. "
                   "sweeps/NAME): a run folder per trial in FOLDER/trials, results.csv and "
                   "report.html")
    p.add_argument("--resume", metavar="FOLDER", help="finish the sweep in FOLDER: run the "
                   "trials that did not finish (from their checkpoints), keep the others")
    p.add_argument("--dry-run", action="store_true",
                   help="list the trials SPEC makes, with the settings that vary, and stop")
    p.add_argument("--scheduler", metavar="ADDRESS", help="the address of a running Dask "
                   "scheduler (tcp://HOST:8786) whose workers run the trials (default: "
                   "$NNSCRATCH_SCHEDULER, else a local cluster made for the sweep)")
    p.add_argument("--workers", type=_option_type(POSITIVE_INT), metavar="N",
                   help="worker processes of the local cluster (default: one per core)")
    p.add_argument("--threads-per-trial", type=_option_type(POSITIVE_INT), metavar="N",
                   help="BLAS (and numba) threads each trial of the local cluster may use "
                   "(default: 1, so trials do not fight over cores)")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar; print only the summary at the end")


# --- data and predict ----------------------------------------------------------------------------

_PLACES = {"path": "the path given,", "env": "NNSCRATCH_DATA,", "cache": "the user cache,",
           "download": "a download into the user cache,", "sample": "the small bundled sample,"}


def _run_data(args: argparse.Namespace) -> int:
    """Say where the other commands would read MNIST (or the data set named by --dataset) from
    right now, and why, place by place in the order they are tried: --data, $NNSCRATCH_DATA
    (MNIST only), the user cache, a download, the small bundled sample (MNIST only); and name
    its classes. Nothing is ever downloaded unasked: 'nnscratch data download' does it, and so
    does any command when NNSCRATCH_DOWNLOAD=1 and the cache lacks the data.
    """
    from .data import explain_dataset, find_dataset, get_dataset
    from .data.download import configured_mirrors

    dataset = get_dataset(args.dataset)
    source = find_dataset(dataset, args.data)
    if source is None:
        print(f"{dataset.title} is not available here yet: run '{dataset.download_command}' "
              f"(or set NNSCRATCH_DOWNLOAD=1), or give --data PATH")
    else:
        print(f"{dataset.title} would come from {_PLACES[source.kind]} {source.location}: "
              f"{source.reason}")
    rows = explain_dataset(dataset, args.data)
    width = max(len(place) for place, _ in rows)
    for place, finding in rows:
        print(f"  {place:<{width}}  {finding}")
    print(f"classes: {_class_list(dataset.classes)}")
    print(f"download mirrors: {', '.join(configured_mirrors(dataset))}")
    return 0


def _class_list(classes: Sequence[str]) -> str:
    """"0, 1, ..." for digits; "0 T-shirt/top, 1 Trouser, ..." for named classes."""
    return ", ".join(name if name == str(label) else f"{label} {name}"
                     for label, name in enumerate(classes))


def _run_data_download(args: argparse.Namespace) -> int:
    """Download the four IDX files of MNIST (or of the data set named by --dataset) into the
    user cache ($NNSCRATCH_CACHE, else $XDG_CACHE_HOME/nnscratch, else ~/.cache/nnscratch; its
    folder named after the set: mnist, fashion-mnist) from the first of the set's mirrors that
    serves each intact, trying the next on any failure. Each file is verified against its pinned
    checksum before it is kept (MNIST: SHA-256 of the data; Fashion-MNIST: the publisher's MD5
    of the .gz file), and a file already there and intact is not downloaded again. Mirrors:
    NNSCRATCH_MIRRORS (comma-separated base URLs) replaces the set's built-in list.
    """
    from .data import ENV_VAR, get_dataset
    from .data.cache import dataset_cache_dir
    from .data.download import Fetched, download_dataset

    dataset = get_dataset(args.dataset)

    def report(fetched: Fetched) -> None:
        how = "already there" if fetched.mirror is None else f"downloaded from {fetched.mirror}"
        print(f"{fetched.name}: {how} ({fetched.size:,} bytes), {dataset.checksum_name} verified",
              flush=True)

    folder = dataset_cache_dir(dataset.name)
    download_dataset(dataset, folder, report=report)
    if dataset.name == DEFAULT_DATASET:
        print(f"the full MNIST is in {folder}; nnscratch uses it when neither --data nor "
              f"{ENV_VAR} names other data")
    else:
        print(f"the full {dataset.title} is in {folder}; nnscratch uses it with --dataset "
              f"{dataset.name} when --data names no other copy")
    return 0


def _run_predict(args: argparse.Namespace) -> int:
    """Prepare each image the way MNIST's digits were made (gray levels, inverted when the
    background is light, cropped to the ink, scaled to fit 20x20 keeping the aspect ratio,
    centred by its centre of mass in 28x28) and print the digit the model reads with its
    likeliest alternatives. One digit per image: crop a photo to it. Reading images needs
    Pillow: pip install 'nnscratch[images]'.
    """
    import numpy as np

    from .imageprep import read_digit, save_digit
    from .model import load_model

    model = load_model(args.model, backend=args.backend)
    if any(str(path).lower().endswith((".csv", ".csv.gz")) for path in args.images):
        return _predict_table(model, args)
    if args.out is not None:
        raise NNScratchError("--out writes the predictions of a CSV table of rows; for images "
                             "they are printed")
    if model.inputs is not None or model.layer_sizes[0] != 28 * 28:
        kind = "features" if model.inputs is not None else "pixels"
        raise NNScratchError(f"{args.model} reads rows of {model.layer_sizes[0]} {kind}, not "
                             f"28x28 pictures of digits: give it a CSV table of such rows")
    digits = np.stack([read_digit(path) for path in args.images])
    for path, probs in zip(args.images, model.predict_proba(digits)):
        ranked = np.argsort(-probs, kind="stable")[:args.top]
        name = (lambda k: k) if model.classes is None else (lambda k: model.classes[k])
        shown = ", ".join(f"{name(k)}: {probs[k]:.1%}" for k in ranked)
        print(f"{path}: {name(ranked[0])}  ({shown})")
    if args.show_input:
        for path, digit, target in zip(args.images, digits,
                                       _input_image_paths(args.show_input, len(digits))):
            save_digit(digit, target)
            print(f"the 28x28 input the model saw for {path} is in {target}")
    return 0


def _predict_table(model: Any, args: argparse.Namespace) -> int:
    """Predict each row of a CSV table: write (or print) a CSV of the prediction and the class
    probabilities, row by row; with a label column, say how many were right."""
    import numpy as np

    from ._fileio import write_text
    from .data.tables import read_rows

    if len(args.images) != 1 or args.show_input:
        raise NNScratchError("give one CSV table of rows to predict (and no --show-input)")
    features, labels = read_rows(args.images[0], model.layer_sizes[0])
    if model.inputs is None and np.array_equal(features, np.round(features)):
        features = features.astype(np.int64)  # pixels written as numbers 0-255
    probabilities = model.predict_proba(features)
    names = np.asarray(model.classes if model.classes is not None
                       else range(model.layer_sizes[-1]))
    predicted = names[probabilities.argmax(axis=1)]
    header = ",".join(["prediction", *(f"p({name})" for name in names)])
    lines = [header] + [",".join([str(label), *(f"{p:.6g}" for p in row)])
                        for label, row in zip(predicted.tolist(), probabilities)]
    text = "\n".join(lines) + "\n"
    if args.out is None:
        sys.stdout.write(text)
    else:
        write_text(args.out, text)
        print(f"{len(predicted):,} predictions written to {args.out}")
    if labels is not None:
        right = int((predicted.astype(str) == labels.astype(str)).sum())
        print(f"{right:,} of {len(labels):,} match the file's labels ({right / len(labels):.2%})",
              file=sys.stderr if args.out is None else sys.stdout)
    return 0


def _input_image_paths(path: str, count: int) -> list[Path]:
    """``path`` for one image; for several, ``path`` numbered before its suffix (a-1.png...)."""
    target = Path(path)
    if count == 1:
        return [target]
    return [target.with_name(f"{target.stem}-{i}{target.suffix}") for i in range(1, count + 1)]


def _add_data(commands: argparse._SubParsersAction) -> None:
    p = _command(commands, "data", _run_data,
                 help="say where the data would come from and why; download it")
    p.add_argument("--data", metavar="PATH", help=DATA_HELP)
    _add_dataset(p)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    download = _command(actions, "download", _run_data_download,
                        help="download the full MNIST (or --dataset NAME) into the user cache")
    # SUPPRESS: given after 'download' it is set, and 'data --dataset NAME download' still counts
    _add_dataset(download, argparse.SUPPRESS)


def _add_predict(commands: argparse._SubParsersAction) -> None:
    p = _command(commands, "predict", _run_predict,
                 help="read handwritten digits from photos or scans")
    p.add_argument("model", metavar="MODEL", help="a model file written by 'nnscratch train'")
    p.add_argument("images", nargs="+", metavar="IMAGE",
                   help="image files (PNG, JPEG, ...), each showing one digit; or one CSV "
                        "table of rows (a header, the model's feature columns, perhaps a label "
                        "column), each row predicted")
    p.add_argument("--show-input", metavar="PATH",
                   help="save the 28x28 image the model saw as PATH (e.g. seen.png); with "
                        "several images, as PATH numbered -1, -2, ... before its suffix")
    p.add_argument("--out", metavar="PATH",
                   help="for a CSV table of rows (IMAGE ending in .csv): write the predictions "
                        "there, a row each (the prediction, then each class's probability), "
                        "instead of printing them")
    p.add_argument("--top", type=_option_type(POSITIVE_INT), default=3, metavar="K",
                   help="how many of the likeliest digits to show (default: 3)")
    p.add_argument("--backend", metavar="NAME", help=BACKEND_HELP)


def _command(commands: argparse._SubParsersAction, name: str, run: Callable[..., int], *,
             help: str) -> argparse.ArgumentParser:
    """The subcommand ``name``, which calls ``run``; its ``--help`` describes it with ``run``'s
    docstring, so each command's description lives beside the code that does it."""
    p = commands.add_parser(name, help=help, description=inspect.cleandoc(run.__doc__ or ""))
    p.set_defaults(run=run)
    return p


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``nnscratch`` command."""
    parser = _Parser(prog="nnscratch",
                     description="Train and evaluate MLP classifiers (of MNIST digits by "
                     "default) on array backends.")
    parser.add_argument("--version", action="version", version=f"nnscratch {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(commands)
    p = _command(commands, "evaluate", _run_evaluate,
                 help="report a model file's test accuracy and loss")
    p.add_argument("model", metavar="MODEL", help="a model file written by 'nnscratch train'")
    p.add_argument("--data", metavar="PATH", help=DATA_HELP)
    _add_dataset(p)
    p.add_argument("--backend", metavar="NAME", help=BACKEND_HELP)
    _add_compare(commands)
    _add_report(commands)
    _add_sweep(commands)
    p = _command(commands, "backends", _run_backends,
                 help="list the backends and whether they can run here")
    _add_data(commands)
    _add_predict(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code. SIGTERM stops a command as Ctrl-C does
    (exit code 143 rather than 130); a file being written when either comes is discarded whole."""
    args = build_parser().parse_args(argv)
    try:
        with terminate_as_interrupt():
            return args.run(args)
    except NNScratchError as exc:
        # A setting's mistake is told in the options' own names (--lr-min, not lr_min).
        message = exc.spelled(_flag) if isinstance(exc, SettingsError) else str(exc)
        print(f"nnscratch {args.command}: error: {message}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # one the code did not expect: still the system's reason, in one line
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"nnscratch {args.command}: error: {where}{os_reason(exc)}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"nnscratch {args.command}: error: out of memory (this machine, or the limit "
              f"set for this process, has too little for what was asked)", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        print(f"nnscratch {args.command}: interrupted by {signal_name(signum)}; no file was "
              f"left half-written", file=sys.stderr)
        return 128 + signum
