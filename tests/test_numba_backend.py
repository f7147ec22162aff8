"""What the Numba backend promises beyond the agreement suite (tests/test_agreement.py): the same
bits on every call and from every thread, the same bits as NumPy where the math is elementwise,
float32 kept float32, index checks, an on-disk kernel cache that a second process reuses, and a
training run that matches NumPy's.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("numba", reason="numba is not installed: pip install -e backends/numba")
pytest.importorskip("nnscratch_numba", reason="nnscratch-numba is not installed: "
                                               "pip install -e backends/numba")

import nnscratch  # noqa: E402
from nnscratch.compare import trajectory_tolerance  # noqa: E402

DTYPES = ["float32", "float64"]


@pytest.fixture
def numba_backend():
    return nnscratch.get_backend("numba")


@pytest.fixture
def numpy_backend():
    return nnscratch.get_backend("numpy")


@pytest.fixture(params=DTYPES)
def dtype(request):
    return request.param


def _normal(seed, shape, dtype, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


def op_calls(dtype, n, d):
    """(name, method, host args, keyword args) for every overridden operation at (n, d)."""
    rng = np.random.default_rng(n + d)
    z, bias = _normal(1, (n, d), dtype, 3.0), _normal(2, (d,), dtype)
    activation = np.maximum(_normal(3, (n, d), dtype), 0)
    labels = rng.integers(0, d, size=n)
    pixels = rng.integers(0, 256, size=(300, 784), dtype=np.uint8)  # images: a few suffice
    rows = rng.integers(-300, 300, size=min(n, 500))
    param, grad, velocity = (_normal(s, (784, 64), dtype) for s in (4, 5, 6))
    return [
        ("pixels_to_float", "pixels_to_float", (pixels, dtype), {}),
        ("pixels_to_float rows", "pixels_to_float", (pixels, dtype), {"rows": rows}),
        ("bias_add", "bias_add", (z, bias), {}),
        ("bias_relu", "bias_relu", (z, bias), {}),
        ("bias_relu_backward", "bias_relu_backward", (z, activation), {}),
        ("softmax", "softmax", (z,), {}),
        ("softmax_cross_entropy", "softmax_cross_entropy", (z, labels), {}),
        ("softmax_cross_entropy_backward", "softmax_cross_entropy_backward",
         (np.abs(z) / d, labels), {}),
        ("sum_rows", "sum_rows", (z,), {}),
        ("argmax_rows", "argmax_rows", (z,), {}),
        ("count_correct", "count_correct", (z, labels), {}),
        ("sgd_update", "sgd_update", (param, grad, 0.1), {}),
        ("sgd_update momentum", "sgd_update", (param, grad, 0.1),
         {"velocity": velocity, "momentum": 0.9}),
    ]


def product_calls(dtype, n):
    """The products of a step of the posts' network (784-10-10) on ``n`` rows: the first
    layer's kernels on uint8 pixels and on floats, and the narrow products on BLAS."""
    rng = np.random.default_rng(n)
    pixels = rng.integers(0, 256, size=(n, 784), dtype=np.uint8)
    floats = (pixels / 255).astype(dtype)
    w1, w2 = _normal(7, (784, 10), dtype, 0.05), _normal(8, (10, 10), dtype)
    a, dz = np.maximum(_normal(9, (n, 10), dtype), 0), _normal(10, (n, 10), dtype, 1e-3)
    return [
        ("pixels_matmul", "pixels_matmul", (pixels, w1), {}),
        ("pixels_matmul of floats", "pixels_matmul", (floats, w1), {}),
        ("pixels_matmul_backward", "pixels_matmul_backward", (pixels, dz), {}),
        ("pixels_matmul_backward of floats", "pixels_matmul_backward", (floats, dz), {}),
        ("matmul", "matmul", (a, w2), {}),
        ("matmul transpose_b", "matmul", (dz, w2), {"transpose_b": True}),
        ("matmul transpose_a", "matmul", (a, dz), {"transpose_a": True}),
    ]


def run_op(backend, method, args, kwargs):
    """Call ``method`` on fresh copies of the host inputs; every array it returns or updates in
    place, as host arrays."""
    args = [backend.asarray(a) if isinstance(a, np.ndarray) else a for a in args]
    kwargs = {k: backend.asarray(v) if isinstance(v, np.ndarray) else v
              for k, v in kwargs.items()}
    result = getattr(backend, method)(*args, **kwargs)
    outputs = list(result) if isinstance(result, tuple) else [result]
    if method == "sgd_update":  # returns None; its results are the updated arrays
        outputs = [args[0]] + ([kwargs["velocity"]] if "velocity" in kwargs else [])
    return [np.array(backend.to_numpy(o)) for o in outputs]


def assert_same_bits(first, second, what):
    assert len(first) == len(second), what
    for a, b in zip(first, second):
        assert a.dtype == b.dtype and a.shape == b.shape, what
        assert a.tobytes() == b.tobytes(), f"{what}: the bits differ"  # NaN and -0.0 too


SIZES = [(128, 10), (128, 800), (60_000, 10)]


@pytest.mark.parametrize("n,d", SIZES)
def test_every_kernel_gives_the_same_bits_on_repeated_calls(numba_backend, dtype, n, d):
    for what, method, args, kwargs in op_calls(dtype, n, d) + product_calls(dtype, n):
        first = run_op(numba_backend, method, args, kwargs)
        for _ in range(3):
            assert_same_bits(run_op(numba_backend, method, args, kwargs), first, what)


def test_results_do_not_depend_on_the_number_of_threads(numba_backend, dtype):
    """Full-batch work is split over numba's thread count (``NUMBA_NUM_THREADS``, or the
    caller's ``numba.set_num_threads``): rows split anywhere give the same rows, and sums over
    rows are taken in chunks fixed by the row count, so one thread gives the bits of many."""
    import numba

    most = numba.config.NUMBA_NUM_THREADS
    if most < 2:
        pytest.skip("numba has one thread here: nothing to compare")
    calls = op_calls(dtype, 60_000, 10) + product_calls(dtype, 60_000)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        alone = [run_op(numba_backend, method, args, kw) for _, method, args, kw in calls]
        numba.set_num_threads(most)
        for (what, method, args, kw), one in zip(calls, alone):
            assert_same_bits(run_op(numba_backend, method, args, kw), one, what)
    finally:
        numba.set_num_threads(before)


def test_full_batch_products_run_blas_on_one_thread_each_and_restore_it(numba_backend,
                                                                        monkeypatch):
    """The narrow products over many rows run on the backend's threads with BLAS on one thread
    in each (no BLAS threads left spinning beside the kernels); BLAS's thread count is put back
    afterwards, the user's own limit included."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import nnscratch_numba

    def blas_threads():
        return [lib["num_threads"] for lib in threadpoolctl.threadpool_info()
                if lib["user_api"] == "blas"]

    if not blas_threads():
        pytest.skip("threadpoolctl finds no BLAS library to limit here")
    seen = []
    original = nnscratch_numba._product_rows

    def recording(*args):
        seen.extend(blas_threads())
        original(*args)

    monkeypatch.setattr(nnscratch_numba, "_product_rows", recording)
    a, w = _normal(1, (60_000, 10), "float32"), _normal(2, (10, 10), "float32")
    before = blas_threads()
    numba_backend.matmul(a, w)
    assert seen and set(seen) == {1}
    assert blas_threads() == before
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        numba_backend.matmul(a, w)
        assert set(blas_threads()) == {1}  # the user's limit, still there
    assert blas_threads() == before
    seen.clear()
    numba_backend.matmul(a[:128], w)  # a mini-batch: BLAS as it is, with its own threads
    assert seen == []


def test_kernels_give_the_same_bits_from_concurrent_threads(numba_backend, dtype):
    """The kernels release the GIL (nogil) and share no state: four threads running all of them
    at once get what one thread gets."""
    calls = op_calls(dtype, 4096, 10)
    alone = [run_op(numba_backend, method, args, kwargs) for _, method, args, kwargs in calls]

    def run_all(_):
        return [run_op(numba_backend, method, args, kwargs) for _, method, args, kwargs in calls]

    with ThreadPoolExecutor(max_workers=4) as pool:
        for together in pool.map(run_all, range(8)):
            for (what, *_), a, b in zip(calls, together, alone):
                assert_same_bits(a, b, what)


def test_training_in_two_threads_matches_training_alone(numba_backend, sample_mnist):
    # (numba_backend: the backend exists before the threads start; they share one instance)
    settings = {"backend": "numba", "hidden": (16,), "epochs": 1, "momentum": 0.9,
                "progress": False}
    alone = nnscratch.train(sample_mnist, **settings).model.params()
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(lambda _: nnscratch.train(sample_mnist, **settings), range(2)))
    for run in runs:
        params = run.model.params()
        for name in alone:
            np.testing.assert_array_equal(params[name], alone[name], err_msg=name)


# The operations whose arithmetic is elementwise (no sum, no exp) round exactly as NumPy's
# ufuncs do: same operations, same order, no fused multiply-add, float32 kept float32. A kernel
# that promoted float32 to float64 inside (an untyped 0.1, say) would fail here.
ELEMENTWISE = {"pixels_to_float", "pixels_to_float rows", "bias_add", "bias_relu",
               "bias_relu_backward", "softmax_cross_entropy_backward", "argmax_rows",
               "count_correct", "sgd_update", "sgd_update momentum"}


@pytest.mark.parametrize("n,d", SIZES)
def test_elementwise_kernels_match_numpy_bit_for_bit(numba_backend, numpy_backend, dtype, n, d):
    for what, method, args, kwargs in op_calls(dtype, n, d):
        if what in ELEMENTWISE:
            assert_same_bits(run_op(numba_backend, method, args, kwargs),
                             run_op(numpy_backend, method, args, kwargs), what)


def test_float32_stays_float32(numba_backend):
    for what, method, args, kwargs in op_calls("float32", 128, 10):
        for out in run_op(numba_backend, method, args, kwargs):
            expected = np.intp if what == "argmax_rows" else (
                np.int64 if what == "count_correct" else np.float32)
            assert out.dtype == expected, f"{what}: {out.dtype}"
    loss, _ = numba_backend.softmax_cross_entropy(_normal(0, (5, 10), "float32"), np.arange(5))
    assert loss.shape == () and loss.dtype == np.float32


def test_float32_bias_gradients_are_summed_in_float64(numba_backend):
    """On 60,000 rows the result is the exact sum rounded once (within an ulp), where NumPy's
    float32 running sum drifts by many ulps."""
    a = _normal(7, (60_000, 10), "float32") + np.float32(0.5)
    exact = a.astype(np.float64).sum(axis=0).astype(np.float32)
    got = numba_backend.sum_rows(a)
    assert got.dtype == np.float32
    np.testing.assert_array_max_ulp(got, exact, maxulp=1)


def test_out_of_range_indices_raise_instead_of_reading_memory(numba_backend):
    pixels = np.zeros((5, 784), np.uint8)
    with pytest.raises(IndexError):
        numba_backend.pixels_to_float(pixels, "float32", rows=np.array([0, 5]))
    np.testing.assert_array_equal(  # negative rows count from the end, as numpy.take's do
        numba_backend.pixels_to_float(pixels + 255, "float32", rows=np.array([-1]))[0], 1.0)
    logits = np.zeros((3, 10), np.float32)
    for bad in (np.array([0, 10, 1]), np.array([0, -1, 1])):
        with pytest.raises(IndexError):
            numba_backend.softmax_cross_entropy(logits.copy(), bad)
        with pytest.raises(IndexError):
            numba_backend.softmax_cross_entropy_backward(logits.copy(), bad)
    with pytest.raises(ValueError):
        numba_backend.softmax_cross_entropy(logits.copy(), np.array([0, 1]))
    with pytest.raises(ValueError):
        numba_backend.bias_relu(logits.copy(), np.zeros(9, np.float32))
    # a full batch, whose loss and count are split into chunks of rows: checked as a whole
    logits = np.zeros((5000, 10), np.float32)
    for labels in (np.zeros(5001, np.int64), np.zeros(4999, np.int64)):
        for method in ("softmax_cross_entropy", "count_correct"):
            with pytest.raises(ValueError):
                getattr(numba_backend, method)(logits.copy(), labels)
    labels = np.zeros(5000, np.int64)
    labels[4321] = 10
    with pytest.raises(IndexError):
        numba_backend.softmax_cross_entropy(logits.copy(), labels)


def test_training_matches_the_numpy_backend(sample_mnist, dtype):
    settings = {"hidden": (32,), "epochs": 1, "dtype": dtype, "progress": False}
    ours = nnscratch.train(sample_mnist, backend="numba", **settings)
    reference = nnscratch.train(sample_mnist, backend="numpy", **settings)
    steps = -(-len(sample_mnist.x_train) // 128)
    bound = trajectory_tolerance(dtype, steps)
    ours_params, reference_params = ours.model.params(), reference.model.params()
    for name, expected in reference_params.items():
        difference = np.abs(ours_params[name].astype(np.float64) - expected).max()
        assert difference <= bound * np.abs(expected).max(), name
        assert ours_params[name].dtype == np.dtype(dtype), name
    assert abs(ours.test_accuracy - reference.test_accuracy) <= 0.005


CACHE_SCRIPT = textwrap.dedent("""
    import json, sys
    import numba, nnscratch
    from nnscratch_numba import _kernels
    nnscratch.train(None, backend="numba", hidden=(16,), epochs=1, momentum=0.9,
                    progress=False)
    stats = {name: [sum(f.stats.cache_hits.values()), sum(f.stats.cache_misses.values())]
             for name, f in vars(_kernels).items()
             if isinstance(f, numba.core.registry.CPUDispatcher)}
    print(json.dumps(stats))
""")


def test_compiled_kernels_are_cached_for_the_next_process(tmp_path, clean_env):
    env = {**clean_env, "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}

    def run():
        out = subprocess.run([sys.executable, "-c", CACHE_SCRIPT], env=env, check=True,
                             capture_output=True, text=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    first = run()
    compiled = {name for name, (_, misses) in first.items() if misses}
    assert {"bias_relu", "normalize_cross_entropy", "sgd_momentum", "sum_rows"} <= compiled
    written = [p.name for p in (tmp_path / "numba-cache").rglob("*")]
    assert any(n.endswith(".nbi") for n in written) and any(n.endswith(".nbc") for n in written)
    second = run()
    assert {name: misses for name, (_, misses) in second.items() if misses} == {}
    loaded = {name for name, (hits, _) in second.items() if hits}
    assert {"bias_relu", "normalize_cross_entropy", "sgd_momentum", "sum_rows"} <= loaded


def test_without_numba_the_backend_says_why(clean_env):
    """nnscratch_numba imports without numba; the registry then reports the reason."""
    code = textwrap.dedent("""
        import sys
        sys.modules["numba"] = None  # makes "import numba" fail, as if it were not installed
        import nnscratch, nnscratch_numba
        info = nnscratch.available_backends()["numba"]
        print(info.available, info.detail)
    """)
    out = subprocess.run([sys.executable, "-c", code], env=clean_env, check=True,
                         capture_output=True, text=True)
    assert out.stdout.startswith("False") and "numba cannot be imported" in out.stdout
    assert "pip install" in out.stdout
