#!/usr/bin/env python3
"""Build the small MNIST sample bundled with nnscratch, reproducibly, from the full IDX files.

    python tools/make_sample.py --source /path/to/full/mnist --out src/nnscratch/sample

How images are chosen (the same source, seed and sizes always give the same sample):

* Each digit keeps its share of the split: digit d gets ``k * count_d / total`` images, rounded
  down, and the images still missing to reach ``k`` go one each to the digits with the largest
  rounded-off fractions (ties to the lower digit). With the full MNIST every digit's count is
  within one image of its exact share.
* Within a digit the images are the first ones of ``rng.permutation`` of that digit's indices, with
  ``rng = numpy.random.default_rng(SEED)``, drawn digit 0 to 9 for the training split and then
  digit 0 to 9 for the test split.
* The chosen images keep their original relative order.

The four files are written as gzip-compressed IDX with the original names, a zero timestamp and no
embedded file name, so the output is byte-identical on the same zlib; the decompressed content is
identical everywhere.
"""

from __future__ import annotations

import argparse
import gzip
import struct
import sys
from pathlib import Path

import numpy as np

# The repository's own reader, whether or not nnscratch is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from nnscratch.data import load_mnist, stratified_indices  # noqa: E402
from nnscratch.errors import DataError  # noqa: E402

SEED = 1998  # the year MNIST was published; any fixed value would do
TRAIN_SIZE = 8_000
TEST_SIZE = 2_000
# The sample ships inside the package; keep the wheel small.
MAX_TOTAL_BYTES = 2 * 1024 * 1024

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
FILE_NAMES = {  # the original names, which nnscratch.data looks for
    ("train", "images"): "train-images-idx3-ubyte.gz",
    ("train", "labels"): "train-labels-idx1-ubyte.gz",
    ("test", "images"): "t10k-images-idx3-ubyte.gz",
    ("test", "labels"): "t10k-labels-idx1-ubyte.gz",
}


def write_idx_gz(path: Path, magic: int, array: np.ndarray) -> None:
    """Write ``array`` (uint8) as a gzip-compressed IDX file, identically on every run."""
    header = struct.pack(f">I{array.ndim}I", magic, *array.shape)
    # filename="" keeps the output's own name out of the gzip header; mtime=0 fixes the time.
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                                compresslevel=9, mtime=0) as stream:
        stream.write(header)
        stream.write(np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def build_sample(source: Path, out: Path, n_train: int, n_test: int, seed: int) -> int:
    """Write the sample's four files into ``out``; return their total size in bytes."""
    full = load_mnist(source)
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    for split, x, y, k in (("train", full.x_train, full.y_train, n_train),
                           ("test", full.x_test, full.y_test, n_test)):
        keep = stratified_indices(y, k, rng)
        write_idx_gz(out / FILE_NAMES[split, "images"], IMAGES_MAGIC, x[keep].reshape(-1, 28, 28))
        write_idx_gz(out / FILE_NAMES[split, "labels"], LABELS_MAGIC, y[keep].astype(np.uint8))
    return sum((out / name).stat().st_size for name in FILE_NAMES.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True,
                        help="folder holding the full MNIST IDX files (raw or .gz)")
    parser.add_argument("--out", type=Path, required=True, help="folder to write the sample to")
    parser.add_argument("--train", type=int, default=TRAIN_SIZE, help="training images to keep")
    parser.add_argument("--test", type=int, default=TEST_SIZE, help="test images to keep")
    parser.add_argument("--seed", type=int, default=SEED, help="seed of the selection")
    args = parser.parse_args(argv)
    try:
        total = build_sample(args.source, args.out, args.train, args.test, args.seed)
    except (DataError, ValueError) as exc:
        print(f"make_sample: {exc}", file=sys.stderr)
        return 2
    sample = load_mnist(args.out)  # read back with the library's reader, as a user would
    print(f"{sample.source}\nwrote {total:,} bytes to {args.out}")
    if total > MAX_TOTAL_BYTES:
        print(f"make_sample: the sample is {total:,} bytes, over the {MAX_TOTAL_BYTES:,}-byte "
              "budget; choose fewer images with --train/--test", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
