"""The nnscratch command, run end to end in a subprocess as a user would run it."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest


def run(args, env, cwd=None):
    return subprocess.run([sys.executable, "-m", "nnscratch", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def assert_user_error(proc, *words, code=2):
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_train_then_evaluate_on_the_bundled_sample(tmp_path, clean_env):
    model = tmp_path / "m.npz"
    proc = run(["train", "--epochs", "2", "--hidden", "32", "--lr", "0.3", "--out", str(model)],
               clean_env)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "sample" in out and "NNSCRATCH_DATA" in out  # says it used the sample, and the fix
    assert len(re.findall(r"^epoch [12]/2 ", out, flags=re.M)) == 2
    trained = float(re.search(r"test accuracy: ([\d.]+)%", out).group(1))
    assert trained > 85 and model.is_file()
    proc = run(["evaluate", str(model)], clean_env)
    assert proc.returncode == 0, proc.stderr
    assert float(re.search(r"test accuracy: ([\d.]+)%", proc.stdout).group(1)) == trained
    assert "784-32-10" in proc.stdout


def test_train_with_explicit_data_folder_and_default_output(tmp_path, clean_env):
    from nnscratch.data import find_mnist

    sample_folder = str(find_mnist().location)
    proc = run(["train", "--data", sample_folder, "--epochs", "1", "--hidden", "8",
                "--batch-size", "full", "--quiet"], clean_env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "epoch 1/1" not in proc.stdout and "test accuracy" in proc.stdout
    assert (tmp_path / "nnscratch-model.npz").is_file()


def test_backends_lists_first_party_names(clean_env):
    proc = run(["backends"], clean_env)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line for line in proc.stdout.splitlines()}
    assert "available" in rows["numpy"].split()[1]
    for name in ("numba", "cupy"):
        assert name in rows
        assert "pip install" in rows[name] or rows[name].split()[1] == "available"


def test_help_and_version(clean_env):
    proc = run(["train", "--help"], clean_env)
    assert proc.returncode == 0
    for option in ("--data", "--backend", "--hidden", "--epochs", "--batch-size", "--lr",
                   "--momentum", "--seed", "--dtype", "--init", "--out", "--quiet"):
        assert option in proc.stdout
    proc = run(["--version"], clean_env)
    assert proc.returncode == 0 and proc.stdout.startswith("nnscratch ")


@pytest.mark.parametrize("args,words", [
    (["train", "--lr", "-1"], ["--lr", "positive"]),
    (["train", "--lr", "abc"], ["--lr"]),
    (["train", "--epochs", "0"], ["--epochs"]),
    (["train", "--hidden", "12,x"], ["--hidden"]),
    (["train", "--momentum", "1.5"], ["--momentum"]),
    (["train", "--dtype", "float16"], ["--dtype"]),
    (["train", "--batch-size", "half"], ["--batch-size"]),
    (["train", "--no-such-option"], ["--no-such-option"]),
    (["frobnicate"], ["frobnicate"]),
    (["train", "--backend", "nope"], ["unknown backend", "nope"]),
    (["train", "--data", "/no/such/folder"], ["/no/such/folder"]),
    (["train", "--out", "/no/such/folder/m.npz"], ["/no/such/folder", "does not exist"]),
    (["evaluate", "/no/such/model.npz"], ["/no/such/model.npz"]),
    (["train", "--patience", "3"], ["--patience needs --validation"]),
    (["train", "--nesterov"], ["--nesterov needs --momentum"]),
])
def test_user_mistakes_are_one_line_and_exit_2(args, words, clean_env):
    proc = run(args, clean_env)
    assert_user_error(proc, *words)
    assert proc.stdout == ""  # refused before any data is read or anything is printed


def test_corrupt_model_file(tmp_path, clean_env):
    bad = tmp_path / "broken.npz"
    bad.write_bytes(b"PK\x03\x04 definitely not a model")
    assert_user_error(run(["evaluate", str(bad)], clean_env), "broken.npz")


def test_corrupt_data_file(tmp_path, clean_env):
    from nnscratch.data import find_mnist

    folder = tmp_path / "data"
    folder.mkdir()
    for f in find_mnist().location.glob("*.gz"):
        (folder / f.name).write_bytes(f.read_bytes())
    broken = folder / "train-images-idx3-ubyte.gz"
    broken.write_bytes(broken.read_bytes()[:5000])
    proc = run(["train", "--data", str(folder), "--out", str(tmp_path / "m.npz")], clean_env)
    assert_user_error(proc, "train-images-idx3-ubyte.gz")
    assert not (tmp_path / "m.npz").exists()


def test_diverging_run_exits_3_and_writes_nothing(tmp_path, clean_env):
    model = tmp_path / "m.npz"
    proc = run(["train", "--lr", "1e6", "--epochs", "2", "--out", str(model)], clean_env)
    assert_user_error(proc, "diverged", "epoch 1", "learning rate", code=3)
    assert not model.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("how", ["option", "environment"])
def test_an_unknown_backend_fails_before_any_data_is_read(how, clean_env):
    env = dict(clean_env, NNSCRATCH_BACKEND="nope") if how == "environment" else clean_env
    proc = run(["train", "--epochs", "1"] + (["--backend", "nope"] if how == "option" else []),
               env)
    assert_user_error(proc, "unknown backend", "nope")
    assert proc.stdout == ""


def test_evaluate_on_another_backend_name_fails_cleanly(tmp_path, clean_env):
    model = tmp_path / "m.npz"
    assert run(["train", "--epochs", "1", "--hidden", "8", "--out", str(model)],
               clean_env).returncode == 0
    assert_user_error(run(["evaluate", str(model), "--backend", "nope"], clean_env), "nope")
    env = {**clean_env, "NNSCRATCH_BACKEND": "nope"}
    assert_user_error(run(["evaluate", str(model)], env), "nope")


def test_cli_model_matches_python_api(tmp_path, clean_env, sample_mnist):
    import nnscratch

    model = tmp_path / "m.npz"
    assert run(["train", "--epochs", "1", "--hidden", "16", "--seed", "7", "--out", str(model)],
               clean_env).returncode == 0
    expected = nnscratch.train(sample_mnist, hidden=(16,), epochs=1, seed=7, progress=False)
    loaded = nnscratch.load_model(model)
    for name, value in expected.model.params().items():
        np.testing.assert_array_equal(loaded.params()[name], value)


def test_compare_agrees_with_itself(clean_env):
    proc = run(["compare", "--backends", "numpy,numpy", "--steps", "12", "--hidden", "16"],
               clean_env)
    assert proc.returncode == 0, proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines() if line.strip().endswith("ok")]
    assert [r[0] for r in rows] == ["1", "2-10", "11-12"]
    assert all(float(r[1]) == 0 and float(r[2]) == 0 for r in rows)
    assert "agree" in proc.stdout


def test_compare_catches_a_wrong_backend(tmp_path, clean_env):
    """A backend whose update is off by one part in a thousand must be reported, exit 1."""
    (tmp_path / "skewed_backend.py").write_text(
        "import numpy\nfrom nnscratch import Backend\n\n"
        "class Skewed(Backend):\n    name = 'skewed'\n    xp = numpy\n\n"
        "    def sgd_update(self, param, grad, lr, *, velocity=None, momentum=0.0):\n"
        "        super().sgd_update(param, grad, lr * 1.001, velocity=velocity,"
        " momentum=momentum)\n")
    dist = tmp_path / "skewed-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: skewed\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[nnscratch.backends]\nskewed = skewed_backend:Skewed\n")
    env = {**clean_env, "PYTHONPATH": str(tmp_path)}
    proc = run(["compare", "--backends", "numpy,skewed", "--steps", "5", "--hidden", "16"], env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "TOO FAR" in proc.stdout and "DISAGREE" in proc.stdout


def test_compare_marks_the_decade_of_a_step_beyond_its_own_bound():
    """The bound grows with the steps: a difference at step 150 above step 150's bound fails,
    and its row says so, though it is below the bound of step 300 that the row shows."""
    from nnscratch.cli import comparison_table
    from nnscratch.compare import Comparison, StepDifference, trajectory_tolerance

    between = (trajectory_tolerance("float32", 150) + trajectory_tolerance("float32", 300)) / 2
    differences = [StepDifference(k, 0.0, between if k == 150 else 1e-7) for k in range(1, 301)]
    result = Comparison("numpy", "other", "float32", differences, 0.9, 0.9)
    assert [d.step for d in result.failures()] == [150]
    rows = comparison_table(result)
    assert [row.split()[-1] for row in rows[1:4]] == ["ok"] * 3
    assert rows[4].split()[0] == "101-300" and rows[4].endswith("TOO FAR from step 150")
    assert between < trajectory_tolerance("float32", 300)  # the bound the row shows


def test_compare_needs_two_backends(clean_env):
    assert_user_error(run(["compare", "--backends", "numpy"], clean_env), "--backends")
