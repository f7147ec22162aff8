"""Size bombs against the command line run with its memory limited (``ulimit -v``, through
``resource.setrlimit``): each is refused in one line with exit code 2, before it can exhaust
the machine, the limit, or the patience of whoever waits for it.

The bombs are small files (or one option) that declare or ask for far more than they hold: a
gzip IDX file of zeros declaring four billion images, an ``.npz`` member declaring a shape of
terabytes, a model file whose metadata declares a layer of a hundred billion units, a
checkpoint member declaring a huge array, and ``--hidden 99999999999``.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import nnscratch
from nnscratch import runs

from test_cli import assert_user_error
from test_malformed import gzip_of_zeros_declaring

resource = pytest.importorskip("resource")  # not on Windows

#: The address space the command may use: enough for Python, NumPy and a small training run
#: (about 1 GB of it is reserved, not used, by the interpreter and OpenBLAS), far less than any
#: bomb asks for.
LIMIT = 3 * 1024**3
SAMPLE = Path(nnscratch.__file__).parent / "sample"


def limited(args, env, cwd=None):
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))
    return subprocess.run([sys.executable, "-m", "nnscratch", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300, preexec_fn=limit)


def npy_with_shape(payload: bytes, shape, dtype="<f4") -> bytes:
    """A .npy member whose header declares ``shape`` but holds only ``payload``."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False,
                                                  "shape": shape})
    return buffer.getvalue() + payload


def rewrite_zip(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path) as archive:
        original = {info.filename: archive.read(info) for info in archive.infolist()}
    with zipfile.ZipFile(path, "w") as archive:
        for name, payload in {**original, **members}.items():
            archive.writestr(name, payload)


def test_the_limit_leaves_room_for_an_ordinary_run(tmp_path, clean_env):
    proc = limited(["train", "--epochs", "1", "--hidden", "32", "--out",
                    str(tmp_path / "m.npz")], clean_env)
    assert proc.returncode == 0, proc.stderr


def test_an_idx_file_declaring_four_billion_images(tmp_path, clean_env):
    folder = tmp_path / "bomb"
    shutil.copytree(SAMPLE, folder)
    (folder / "train-images-idx3-ubyte.gz").write_bytes(
        gzip_of_zeros_declaring(4_000_000_000, 64 << 20))
    proc = limited(["train", "--epochs", "1", "--data", str(folder)], clean_env, cwd=tmp_path)
    assert_user_error(proc, "train-images-idx3-ubyte.gz")
    assert not (tmp_path / "nnscratch-model.npz").exists()


def test_an_npz_member_declaring_terabytes(tmp_path, clean_env):
    path = tmp_path / "bomb.npz"
    rng = np.random.default_rng(0)
    np.savez(path, x_train=rng.integers(0, 255, (50, 784), dtype=np.uint8),
             y_train=np.arange(50) % 10, x_test=rng.integers(0, 255, (20, 784), dtype=np.uint8),
             y_test=np.arange(20) % 10)
    rewrite_zip(path, {"x_train.npy": npy_with_shape(bytes(4096), (10**9, 784), "|u1")})
    proc = limited(["train", "--epochs", "1", "--data", str(path)], clean_env, cwd=tmp_path)
    assert_user_error(proc, "bomb.npz")


def test_a_model_file_declaring_a_huge_layer(tmp_path, clean_env):
    path = tmp_path / "bomb.npz"
    nnscratch.MLP((16,)).save(path)
    with zipfile.ZipFile(path) as archive:
        metadata = json.loads(np.lib.format.read_array(
            io.BytesIO(archive.read("__metadata__.npy"))).tobytes())
    metadata["layer_sizes"] = [784, 99_999_999_999, 10]
    blob = np.frombuffer(json.dumps(metadata).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.save(buffer, blob)
    rewrite_zip(path, {"__metadata__.npy": buffer.getvalue(),
                       "W1.npy": npy_with_shape(bytes(4096), (784, 99_999_999_999)),
                       "b1.npy": npy_with_shape(bytes(64), (99_999_999_999,)),
                       "W2.npy": npy_with_shape(bytes(640), (99_999_999_999, 10))})
    proc = limited(["evaluate", str(path)], clean_env)
    assert_user_error(proc, "bomb.npz")


def test_a_checkpoint_member_declaring_a_huge_array(tmp_path, clean_env):
    folder = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "nnscratch", "train", "--epochs", "5",
                             "--hidden", "16", "--batch-size", "20", "--out", str(folder)],
                            env=clean_env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    for line in proc.stdout:
        if line.startswith("epoch 1/5"):
            proc.terminate()
            break
    proc.communicate(timeout=120)
    assert proc.returncode == 143
    rewrite_zip(folder / runs.CHECKPOINT,
                {"param.W1.npy": npy_with_shape(bytes(4096), (784, 99_999_999_999))})
    proc = limited(["train", "--resume", str(folder)], clean_env)
    assert_user_error(proc, "checkpoint", "param.W1")


@pytest.mark.parametrize("hidden", ["99999999999", "4000000,4000000", "2000000"])
def test_a_network_too_large_for_the_machine_or_the_limit(tmp_path, clean_env, hidden):
    """Terabytes, or (2,000,000 hidden units: 6 GB of weights) more than the limit leaves."""
    proc = limited(["train", "--hidden", hidden, "--out", str(tmp_path / "run")], clean_env)
    assert_user_error(proc, "layer sizes", "would need")
    assert not (tmp_path / "run").exists()
