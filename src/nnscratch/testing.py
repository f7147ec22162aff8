"""The backend agreement suite, and the tolerances and reference formulas it is built on.

Any backend, ours or a third party's, runs the whole suite by subclassing
:class:`BackendAgreementSuite` in a test module and giving it one fixture::

    from nnscratch.testing import BackendAgreementSuite

    class TestMyBackend(BackendAgreementSuite):
        @pytest.fixture
        def backend_name(self):
            return "mybackend"

Comparisons look at shape and dtype first and only then at values, with tolerances derived from
the dtype by :func:`tolerance`, so that one rule serves float32 and float64 alike. A backend
that cannot run here (missing library, no device) makes every test skip with the reason.
Needs pytest and hypothesis (the ``test`` extra). Names listed in ``NNSCRATCH_REQUIRE_BACKENDS``
(comma-separated) fail instead of skipping, so CI cannot pass by skipping a backend.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from .compare import tolerance, trajectory_tolerance

__all__ = ["tolerance", "trajectory_tolerance", "assert_same_array", "Reference",
           "interface_mismatches", "backend_or_skip", "gradient_check_error",
           "BackendAgreementSuite"]


def assert_same_array(actual: Any, expected: Any, dtype: Any, *, scale: float | None = None,
                      what: str = "result") -> None:
    """Assert that host array ``actual`` has ``expected``'s shape, the given ``dtype``, and
    values within :func:`tolerance` of ``expected`` (usually computed in float64)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert actual.dtype == np.dtype(dtype), f"{what}: dtype {actual.dtype} != {np.dtype(dtype)}"
    if scale is None:
        scale = float(np.max(np.abs(expected))) if expected.size else 1.0
    rtol, atol = tolerance(dtype, scale)
    np.testing.assert_allclose(actual.astype(np.float64), expected, rtol=rtol, atol=atol,
                               err_msg=what)


class Reference:
    """Each backend operation as a plain float64 formula, written for clarity, not speed."""

    @staticmethod
    def pixels_to_float(pixels: np.ndarray) -> np.ndarray:
        return pixels.astype(np.float64) / 255.0 if pixels.dtype == np.uint8 else pixels

    @staticmethod
    def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = np.zeros((a.shape[0], b.shape[1]))
        for k in range(a.shape[1]):  # a sum of outer products: independent of BLAS
            out += np.outer(a[:, k].astype(np.float64), b[k, :].astype(np.float64))
        return out

    @staticmethod
    def bias_relu(z: np.ndarray, bias: np.ndarray) -> np.ndarray:
        s = z.astype(np.float64) + bias
        return np.where(s > 0, s, 0.0)

    @staticmethod
    def softmax(logits: np.ndarray) -> np.ndarray:
        z = logits.astype(np.float64)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    @staticmethod
    def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
        z = logits.astype(np.float64)
        top = z.max(axis=1)
        log_norm = top + np.log(np.exp(z - top[:, None]).sum(axis=1))
        return float(np.mean(log_norm - z[np.arange(len(labels)), labels]))

    @staticmethod
    def cross_entropy_backward(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        onehot = np.eye(logits.shape[1])[labels]
        return (Reference.softmax(logits) - onehot) / len(labels)


def interface_mismatches(cls: type) -> list[str]:
    """How a backend class departs from the :class:`~nnscratch.Backend` interface: public
    methods whose signatures differ, and public methods the interface does not have."""
    from .backend import Backend

    def public(c: type) -> dict[str, inspect.Signature]:
        return {name: inspect.signature(getattr(c, name)) for name in dir(c)
                if not name.startswith("_") and callable(getattr(c, name))}

    expected, actual = public(Backend), public(cls)
    problems = [f"{name}{actual[name]} differs from the interface's {name}{sig}"
                for name, sig in expected.items() if actual[name] != sig]
    problems += [f"{name} is not part of the interface" for name in actual.keys() - expected]
    return problems


# --- the suite -------------------------------------------------------------------------------

DTYPES = ("float32", "float64")
#: Comma-separated backend names whose tests must run: set in CI, so that a backend that failed
#: to install fails the suite instead of being skipped.
REQUIRE_ENV_VAR = "NNSCRATCH_REQUIRE_BACKENDS"
MATMUL_SHAPES = ((1, 784, 10), (7, 13, 5), (128, 784, 128), (33, 10, 1), (9001, 10, 10),
                 (10, 9001, 10))
#: (n, d, h) for the first layer's products: batch 1, odd sizes, narrow and wide layers, and
#: enough rows to be split across threads and chunks.
PIXELS_MATMUL_SHAPES = ((1, 784, 10), (13, 17, 5), (3, 784, 16), (128, 784, 128),
                        (2049, 31, 7), (9001, 784, 10))
BATCHES = (1, 13, 128)
SGD_SETTINGS = ((0.0, False, 0.0), (0.9, False, 0.0), (0.9, True, 0.0), (0.0, False, 0.01),
                (0.9, True, 0.01))
OPTIMIZER_SETTINGS = (
    {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-3},
    {"optimizer": "adam", "lr": 0.002, "weight_decay": 1e-4},
)


def _host(backend: Any, a: Any) -> np.ndarray:
    return np.asarray(backend.to_numpy(a))


def _normal(seed: int, shape: tuple[int, ...], dtype: str, scale: float = 1.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


def _labels(seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed + 1).integers(0, 10, size=n)


def _sample() -> Any:
    from pathlib import Path

    from .data import load_mnist

    return load_mnist(Path(__file__).parent / "sample")


def backend_or_skip(name: str) -> Any:
    """The backend ``name``; a pytest skip with the reason if it cannot run here (a failure
    instead if ``NNSCRATCH_REQUIRE_BACKENDS`` lists it)."""
    from .backend import get_backend
    from .errors import BackendUnavailableError

    try:
        return get_backend(name)
    except BackendUnavailableError as exc:
        if name in os.environ.get(REQUIRE_ENV_VAR, "").split(","):
            pytest.fail(f"{exc} ({REQUIRE_ENV_VAR} forbids skipping it)")
        pytest.skip(str(exc))


class BackendAgreementSuite:
    """Every check a backend must pass to agree with the NumPy reference.

    Subclass it in a test module (name the subclass ``Test...``) and define the fixture
    ``backend_name``. The tests compare each interface method with the reference on the same
    inputs, check softmax and cross-entropy properties on generated inputs, check gradients
    against finite differences in float64, and compare whole training runs step by step.
    """

    @pytest.fixture
    def backend_name(self) -> str:
        raise NotImplementedError("define the backend_name fixture in your subclass")

    @pytest.fixture
    def backend(self, backend_name: str) -> Any:
        return backend_or_skip(backend_name)

    @pytest.fixture
    def reference(self) -> Any:
        from .backend import get_backend

        return get_backend("numpy")

    @pytest.fixture(params=DTYPES)
    def dtype(self, request: Any) -> str:
        return request.param

    @staticmethod
    def agree(backend: Any, reference: Any, method: str, args: tuple, result_dtype: Any, *,
              scale: float | None = None, exact: bool = False, **kwargs: Any) -> np.ndarray:
        """Run ``method`` on both backends with copies of the host ``args``; assert the results
        agree (shape and dtype first, then values); return the backend's result."""
        results = []
        for b in (backend, reference):
            out = getattr(b, method)(*(b.asarray(a) for a in args), **kwargs)
            results.append(_host(b, out))
        actual, expected = results
        if exact:
            assert actual.shape == expected.shape and actual.dtype == expected.dtype, method
            np.testing.assert_array_equal(actual, expected, err_msg=method)
        else:
            assert_same_array(actual, expected.astype(np.float64), result_dtype, scale=scale,
                              what=method)
        return actual

    # --- each method against the reference ---------------------------------------------------

    def test_interface_signatures(self, backend: Any) -> None:
        assert interface_mismatches(type(backend)) == []

    @pytest.mark.parametrize("m,k,n", MATMUL_SHAPES)
    @pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True)])
    def test_matmul(self, backend, reference, dtype, m, k, n, ta, tb):
        a, b = _normal(m, (m, k), dtype), _normal(n, (k, n), dtype)
        a, b = (np.ascontiguousarray(a.T) if ta else a), (np.ascontiguousarray(b.T) if tb else b)
        # each entry sums k products of size ~1: judge errors against sqrt(k)
        self.agree(backend, reference, "matmul", (a, b), dtype, scale=np.sqrt(k),
                   transpose_a=ta, transpose_b=tb)

    @pytest.mark.parametrize("n", BATCHES)
    def test_pixels_to_float(self, backend, reference, dtype, n):
        pixels = np.random.default_rng(n).integers(0, 256, size=(n, 784), dtype=np.uint8)
        # dividing by 255 is correctly rounded: every backend must give identical inputs
        self.agree(backend, reference, "pixels_to_float", (pixels,), dtype, exact=True,
                   dtype=dtype)
        rows = np.array([n - 1, 0, n // 2, 0])
        out_b = backend.pixels_to_float(backend.asarray(pixels), dtype, rows=backend.asarray(rows))
        np.testing.assert_array_equal(_host(backend, out_b),
                                      pixels[rows].astype(dtype) / np.asarray(255, dtype))
        floats = np.linspace(0, 1, n * 784).reshape(n, 784)
        self.agree(backend, reference, "pixels_to_float", (floats,), dtype, exact=True,
                   dtype=dtype)

    @pytest.mark.parametrize("n,d,h", PIXELS_MATMUL_SHAPES)
    def test_pixels_matmul(self, backend, reference, dtype, n, d, h):
        pixels = np.random.default_rng(n).integers(0, 256, size=(n, d), dtype=np.uint8)
        w, grad = _normal(h, (d, h), dtype), _normal(h + 1, (n, h), dtype)
        floats = Reference.pixels_to_float(pixels)
        # sums of d (forward) or n (backward) products of size up to ~1: judged against sqrt
        for images in (pixels, floats.astype(dtype)):
            self.agree(backend, reference, "pixels_matmul", (images, w), dtype,
                       scale=np.sqrt(d))
            self.agree(backend, reference, "pixels_matmul_backward", (images, grad), dtype,
                       scale=np.sqrt(n))
        product = _host(backend, backend.pixels_matmul(backend.asarray(pixels),
                                                       backend.asarray(w)))
        assert_same_array(product, Reference.matmul(floats, w), dtype, scale=np.sqrt(d))
        weights = _host(backend, backend.pixels_matmul_backward(backend.asarray(pixels),
                                                                backend.asarray(grad)))
        assert_same_array(weights, Reference.matmul(floats.T, grad), dtype, scale=np.sqrt(n))

    def test_take_rows(self, backend, reference):
        labels = np.arange(37, dtype=np.int64) % 10
        self.agree(backend, reference, "take_rows", (labels, np.array([36, 0, 5, 5])), "int64",
                   exact=True)

    @pytest.mark.parametrize("n,d", [(1, 10), (13, 17), (128, 128), (128, 800)])
    def test_bias_layers(self, backend, reference, dtype, n, d):
        z, bias = _normal(d, (n, d), dtype), _normal(d + 1, (d,), dtype)
        self.agree(backend, reference, "bias_add", (z, bias), dtype)
        activation = self.agree(backend, reference, "bias_relu", (z, bias), dtype)
        assert (activation >= 0).all()
        grad = _normal(d + 2, (n, d), dtype)
        self.agree(backend, reference, "bias_relu_backward", (grad, activation), dtype,
                   exact=True)

    @pytest.mark.parametrize("n", BATCHES)
    @pytest.mark.parametrize("scale", [1.0, 30.0, 1e4])
    def test_softmax_cross_entropy(self, backend, reference, dtype, n, scale):
        logits, labels = _normal(n, (n, 10), dtype, scale), _labels(n, n)
        self.agree(backend, reference, "softmax", (logits,), dtype, scale=1.0)
        results = []
        for b in (backend, reference):
            loss, probs = b.softmax_cross_entropy(b.asarray(logits), b.asarray(labels))
            results.append((_host(b, loss), _host(b, probs)))
        (loss, probs), (ref_loss, ref_probs) = results
        assert loss.shape == () and loss.dtype == np.dtype(dtype)
        assert_same_array(probs, ref_probs.astype(np.float64), dtype, scale=1.0, what="probs")
        # the loss is a difference of terms as large as the logits: judge it against them
        assert_same_array(loss, ref_loss.astype(np.float64), dtype,
                          scale=max(scale, float(ref_loss)), what="loss")

    @pytest.mark.parametrize("n", BATCHES)
    def test_softmax_cross_entropy_backward(self, backend, reference, dtype, n):
        logits, labels = _normal(n, (n, 10), dtype, 3.0), _labels(n, n)
        probs = reference.softmax(logits)
        self.agree(backend, reference, "softmax_cross_entropy_backward", (probs, labels), dtype,
                   scale=1.0 / n)

    @pytest.mark.parametrize("n,d", [(1, 10), (13, 17), (128, 800), (60_000, 10)])
    def test_sum_rows(self, backend, reference, dtype, n, d):
        self.agree(backend, reference, "sum_rows", (_normal(n, (n, d), dtype),), dtype,
                   scale=np.sqrt(n))

    def test_argmax_rows_and_count_correct(self, backend, reference, dtype):
        logits, labels = _normal(5, (200, 10), dtype), _labels(5, 200)
        self.agree(backend, reference, "argmax_rows", (logits,), None, exact=True)
        count = self.agree(backend, reference, "count_correct", (logits, labels), None,
                           exact=True)
        assert count.shape == () and int(count) == int((logits.argmax(1) == labels).sum())

    @pytest.mark.parametrize("momentum,nesterov,weight_decay", SGD_SETTINGS)
    def test_sgd_update(self, backend, reference, dtype, momentum, nesterov, weight_decay):
        shape = (784, 33)
        param0, grads = _normal(1, shape, dtype), [_normal(s, shape, dtype) for s in (2, 3)]
        finals = []
        for b in (backend, reference):
            param = b.asarray(param0)
            velocity = b.zeros(shape, dtype) if momentum else None
            for g in grads:
                b.sgd_update(param, b.asarray(g), 0.1, velocity=velocity, momentum=momentum,
                             nesterov=nesterov, weight_decay=weight_decay)
            finals.append([_host(b, a) for a in (param, velocity) if a is not None])
        for actual, expected in zip(*finals):
            assert_same_array(actual, expected.astype(np.float64), dtype, what="sgd_update")

    @pytest.mark.parametrize("weight_decay", [0.0, 0.01])
    def test_adam_update(self, backend, reference, dtype, weight_decay):
        shape = (784, 33)
        param0 = _normal(1, shape, dtype)
        # gradients of very different sizes: Adam's step must not depend on their scale
        grads = [_normal(s, shape, dtype, scale) for s, scale in ((2, 1.0), (3, 1e-3), (4, 30))]
        finals = []
        for b in (backend, reference):
            param, m, v = b.asarray(param0), b.zeros(shape, dtype), b.zeros(shape, dtype)
            for step, g in enumerate(grads, start=1):
                b.adam_update(param, b.asarray(g), m, v, 0.01, step=step,
                              weight_decay=weight_decay)
            finals.append([_host(b, a) for a in (param, m, v)])
        for what, actual, expected in zip(("param", "m", "v"), *finals):
            assert_same_array(actual, expected.astype(np.float64), dtype,
                              what=f"adam_update {what}")

    def test_moving_data(self, backend, dtype):
        host = np.arange(12, dtype=dtype).reshape(3, 4)
        on_backend = backend.asarray(host)
        host[0, 0] = 99  # asarray copies
        back = _host(backend, on_backend)
        assert back.dtype == np.dtype(dtype) and back.shape == (3, 4) and back[0, 0] == 0
        zeros = _host(backend, backend.zeros((2, 5), dtype))
        assert zeros.dtype == np.dtype(dtype) and zeros.shape == (2, 5) and not zeros.any()
        backend.synchronize()

    # --- properties on generated inputs ------------------------------------------------------

    # the backend fixture is stateless, so sharing it across generated examples is safe
    @settings(max_examples=60, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(logits=arrays(np.float64, st.tuples(st.integers(1, 20), st.integers(2, 12)),
                         elements=st.floats(-1e4, 1e4)),
           shift=st.floats(-50, 50), data=st.data())
    def test_softmax_cross_entropy_properties(self, backend, logits, shift, data):
        labels = np.array(data.draw(st.lists(st.integers(0, logits.shape[1] - 1),
                                             min_size=len(logits), max_size=len(logits))))
        rtol = tolerance("float64")[0]
        loss, probs = backend.softmax_cross_entropy(backend.asarray(logits),
                                                    backend.asarray(labels))
        loss, probs = float(_host(backend, loss)), _host(backend, probs)
        assert np.isfinite(loss) and loss >= 0 and np.isfinite(probs).all()
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=0, atol=rtol)
        shifted_loss, shifted = backend.softmax_cross_entropy(backend.asarray(logits + shift),
                                                              backend.asarray(labels))
        # adding the shift rounds each logit, by up to half an ulp of the largest magnitude
        size = float(np.abs(logits).max()) + abs(shift) + 1
        np.testing.assert_allclose(_host(backend, shifted), probs, rtol=0, atol=rtol * size)
        assert abs(float(_host(backend, shifted_loss)) - loss) <= rtol * size
        grad = _host(backend, backend.softmax_cross_entropy_backward(backend.asarray(probs),
                                                                     backend.asarray(labels)))
        np.testing.assert_allclose(grad.sum(axis=1), 0.0, rtol=0, atol=rtol)

    # --- gradients and whole training runs ---------------------------------------------------

    @pytest.mark.parametrize("hidden", [(8,), (6, 5)])
    def test_gradients_match_finite_differences(self, backend, hidden):
        assert gradient_check_error(backend, hidden) <= 1e-6

    def test_training_trajectory_matches_reference(self, backend, reference, dtype):
        from .compare import compare_backends

        comparison = compare_backends(reference.name, backend.name, _sample(), steps=300,
                                      dtype=dtype, hidden=(64,), lr=0.1, momentum=0.5)
        assert comparison.failures() == []
        # the same decisions on (nearly) every test image: 2,000 images, at most 2 may differ
        assert abs(comparison.other_accuracy - comparison.reference_accuracy) <= 0.001

    @pytest.mark.parametrize("optimizer", OPTIMIZER_SETTINGS)
    def test_training_with_each_optimizer_matches_reference(self, backend, reference, dtype,
                                                            optimizer):
        from .compare import compare_backends

        comparison = compare_backends(reference.name, backend.name, _sample(), steps=100,
                                      dtype=dtype, hidden=(64,), **optimizer)
        assert comparison.failures() == []

    @pytest.mark.parametrize("optimizer", OPTIMIZER_SETTINGS)
    @pytest.mark.parametrize("where", ["inside an epoch", "between epochs"])
    def test_interrupted_and_resumed_run_is_bit_identical(self, backend, optimizer, where,
                                                          tmp_path):
        """Ctrl-C (a real SIGINT, sent to this process after step 20 of epoch 2, or as epoch 1
        ends) and resume give exactly the parameters and metrics of the run that was not
        interrupted."""
        import signal

        from .runs import read_metrics
        from .train import Callback, TrainingInterrupted, train

        class Interrupt(Callback):
            def on_epoch_start(self, epoch, epochs, steps):
                self.epoch = epoch

            def on_step(self, step):
                if where == "inside an epoch" and (self.epoch, step) == (2, 20):
                    os.kill(os.getpid(), signal.SIGINT)

            def on_epoch_end(self, stats):
                if where == "between epochs" and stats.epoch == 1:
                    os.kill(os.getpid(), signal.SIGINT)

        settings = dict(backend=backend, hidden=(32,), epochs=3, batch_size=100,
                        schedule="cosine", validation=0.1, progress=False, **optimizer)
        whole = train(_sample(), out=tmp_path / "whole", **settings)
        with pytest.raises(TrainingInterrupted) as stop:
            train(_sample(), out=tmp_path / "cut", callback=Interrupt(), **settings)
        assert (stop.value.epoch, stop.value.step) == ((2, 21) if where == "inside an epoch"
                                                       else (2, 0))
        assert stop.value.checkpoint == tmp_path / "cut" / "checkpoint.npz"
        resumed = train(_sample(), resume=tmp_path / "cut", backend=backend, progress=False)
        for name, value in whole.model.params().items():
            np.testing.assert_array_equal(resumed.model.params()[name], value, err_msg=name)
        drop_seconds = [{k: v for k, v in row.items() if k != "seconds"}
                        for row in (read_metrics(tmp_path / "whole") +
                                    read_metrics(tmp_path / "cut"))]
        assert drop_seconds[:3] == drop_seconds[3:] and len(drop_seconds) == 6

    def test_divergence_names_the_epoch_and_step(self, backend):
        from .errors import TrainingDivergedError
        from .train import train

        with pytest.raises(TrainingDivergedError,
                           match=r"at epoch 1, step [2-9]: the loss became \S+; the "
                                 r"learning rate \(1e\+06\) is probably too large"):
            train(_sample(), backend=backend, hidden=(32,), epochs=1, lr=1e6, progress=False)

    def test_same_seed_is_bit_identical(self, backend):
        from .train import train

        runs = [train(_sample(), backend=backend, hidden=(32,), epochs=1, momentum=0.9,
                      progress=False).model.params() for _ in range(2)]
        for name in runs[0]:
            np.testing.assert_array_equal(runs[0][name], runs[1][name], err_msg=name)


def gradient_check_error(backend: Any, hidden: tuple[int, ...], h: float = 1e-6) -> float:
    """The worst relative error between a float64 model's analytic gradients and central
    finite differences, over every bias entry and a subset of weight entries of each layer."""
    from .model import MLP

    sample = _sample()
    x, y = sample.x_train[:6], sample.y_train[:6]
    model = MLP(hidden, backend=backend, dtype="float64", init="xavier", seed=3)
    params = model.params()
    _, grads = model.loss_and_grads(x, y)
    rng = np.random.default_rng(0)
    worst = 0.0
    for name, analytic in grads.items():
        entries = (np.arange(analytic.size) if analytic.size <= 64 else np.unique(np.concatenate(
            [np.flatnonzero(analytic)[:40], rng.choice(analytic.size, 40, replace=False)])))
        numeric = np.empty(len(entries))
        for i, flat in enumerate(entries):
            losses = []
            for sign in (1, -1):
                shifted = {k: v.copy() for k, v in params.items()}
                shifted[name].flat[flat] += sign * h
                model.set_params(shifted)
                losses.append(model.loss_and_grads(x, y)[0])
            numeric[i] = (losses[0] - losses[1]) / (2 * h)
        exact = np.asarray(analytic).ravel()[entries]
        assert np.linalg.norm(numeric) > 0, name
        error = np.linalg.norm(numeric - exact) / (np.linalg.norm(numeric) + np.linalg.norm(exact))
        worst = max(worst, float(error))
    model.set_params(params)
    return worst
