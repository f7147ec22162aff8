"""MNIST and the data sets stored like it: where they come from, reading them, and downloading them;
each job in a module of its own.

- :mod:`.datasets`: the named data sets (``mnist``, ``fashion-mnist``): titles, class names,
  mirrors and pinned checksums;
- :mod:`.sources`: where the data comes from (a path, ``NNSCRATCH_DATA``, the user cache, a
  download, the bundled sample), :func:`load_dataset` and :func:`load_mnist`;
- :mod:`.formats`: which format holds it, from a folder's file names or a file's content;
- :mod:`.readers`: reading one IDX, CSV or ``.npz`` file as checked pixels and labels;
- :mod:`.split`: the held-out test set for data without one, and stratified subsets;
- :mod:`.cache`: where the user cache is;
- :mod:`.download`: mirrors, pinned checksums and the verified download into the cache.

Checking arrays a user hands the model is :mod:`nnscratch.inputs`' job; :func:`as_pixels` and
:func:`as_labels` are re-exported here for the code that has always imported them from here.
"""

from __future__ import annotations

from ..inputs import as_labels, as_pixels
from .cache import CACHE_ENV_VAR, user_cache_dir
from .datasets import DATASETS, Dataset, dataset_names, get_dataset
from .download import (MIRRORS, MIRRORS_ENV_VAR, PINNED, TIMEOUT_SECONDS, Fetched,
                       configured_mirrors, download_dataset, download_mnist, has_record,
                       verify_cached)
from .readers import read_csv, read_idx_images, read_idx_labels, read_npz
from .sources import (DOWNLOAD_ENV_VAR, ENV_VAR, SAMPLE_HINT, DataSource, MnistData,
                      explain_dataset, explain_mnist, find_dataset, find_mnist, load_dataset,
                      load_mnist)
from .split import HOLDOUT_SEED, class_quotas, stratified_indices

__all__ = [
    "MnistData",
    "DataSource",
    "load_mnist",
    "find_mnist",
    "explain_mnist",
    "read_idx_images",
    "read_idx_labels",
    "read_csv",
    "read_npz",
    "user_cache_dir",
    "as_pixels",
    "as_labels",
    "class_quotas",
    "stratified_indices",
    "SAMPLE_HINT",
    "ENV_VAR",
    "CACHE_ENV_VAR",
    "DOWNLOAD_ENV_VAR",
    "HOLDOUT_SEED",
    # downloading (formerly nnscratch.download)
    "MIRRORS",
    "MIRRORS_ENV_VAR",
    "PINNED",
    "TIMEOUT_SECONDS",
    "Fetched",
    "configured_mirrors",
    "download_mnist",
    "has_record",
    "verify_cached",
    # named data sets
    "load_dataset",
    "find_dataset",
    "explain_dataset",
    "download_dataset",
    "DATASETS",
    "Dataset",
    "get_dataset",
    "dataset_names",
]
