"""The backend agreement suite, and the tolerances and reference formulas it is built on.

The suite comes in four groups, each a class that needs one fixture, ``backend_name``:

* :class:`OperationsSuite`: every interface method against the plain float64 formulas of
  :class:`Reference` (or, where bits must match, a plain NumPy expression), its signatures, and
  properties on generated inputs.
* :class:`GradientSuite`: analytic gradients against finite differences, in float64.
* :class:`TrajectorySuite`: whole trainings from the same seed, compared step by step with the
  NumPy backend's and with the backend's own float64 training; reruns and divergence.
* :class:`ResumeSuite`: a real SIGINT inside an epoch and between epochs, then a bit-identical
  resume.

:class:`BackendAgreementSuite` is all four. A backend, ours or a third party's, runs one group,
or all of them, by subclassing it in a test module (name the subclass ``Test...``)::

    import pytest
    from nnscratch.testing import OperationsSuite

    class TestMyBackendOperations(OperationsSuite):
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

import contextlib
import inspect
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from . import Callback, TrainingInterrupted, train
from .backend import Backend
from .registry import get_backend
from .compare import compare_backends, tolerance, trajectory_tolerance
from .data import load_mnist
from .errors import BackendUnavailableError, TrainingDivergedError
from .model import MLP
from .runs import read_metrics

__all__ = ["tolerance", "trajectory_tolerance", "assert_same_array", "Reference",
           "interface_mismatches", "backend_or_skip", "gradient_check_error",
           "OperationsSuite", "GradientSuite", "TrajectorySuite", "ResumeSuite",
           "BackendAgreementSuite", "synthetic_data"]


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


def _assert_identical(actual: Any, expected: Any, what: str) -> None:
    """Shape and dtype first, then every bit (for results that are exact by construction)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    np.testing.assert_array_equal(actual, expected, err_msg=what)


def _f64(a: Any) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


class Reference:
    """Each backend operation as a plain float64 formula, written for clarity, not speed: the
    living specification that every backend, NumPy's included, is tested against. Inputs are
    host arrays of any float dtype; results are new float64 arrays (integers where counted)."""

    @staticmethod
    def pixels_to_float(pixels: np.ndarray) -> np.ndarray:
        return pixels.astype(np.float64) / 255.0 if pixels.dtype == np.uint8 else _f64(pixels)

    @staticmethod
    def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = np.zeros((a.shape[0], b.shape[1]))
        for k in range(a.shape[1]):  # a sum of outer products: independent of BLAS
            out += np.outer(_f64(a[:, k]), _f64(b[k, :]))
        return out

    @staticmethod
    def bias_add(z: np.ndarray, bias: np.ndarray) -> np.ndarray:
        return _f64(z) + _f64(bias)[None, :]

    @staticmethod
    def bias_relu(z: np.ndarray, bias: np.ndarray) -> np.ndarray:
        s = Reference.bias_add(z, bias)
        return np.where(s > 0, s, 0.0)

    @staticmethod
    def bias_relu_backward(grad: np.ndarray, activation: np.ndarray) -> np.ndarray:
        return np.where(activation > 0, _f64(grad), 0.0)

    @staticmethod
    def softmax(logits: np.ndarray) -> np.ndarray:
        z = _f64(logits)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    @staticmethod
    def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
        z = _f64(logits)
        top = z.max(axis=1)
        log_norm = top + np.log(np.exp(z - top[:, None]).sum(axis=1))
        return float(np.mean(log_norm - z[np.arange(len(labels)), labels]))

    @staticmethod
    def softmax_cross_entropy_backward(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """The gradient of the mean loss with respect to the logits, given their softmax."""
        onehot = np.eye(probs.shape[1])[labels]
        return (_f64(probs) - onehot) / len(labels)

    @staticmethod
    def cross_entropy_backward(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return Reference.softmax_cross_entropy_backward(Reference.softmax(logits), labels)

    @staticmethod
    def sum_rows(a: np.ndarray) -> np.ndarray:
        return _f64(a).sum(axis=0)

    @staticmethod
    def argmax_rows(a: np.ndarray) -> np.ndarray:
        # the first column holding the row's largest value
        return np.array([max(range(len(row)), key=lambda j: row[j]) for row in a], dtype=int)

    @staticmethod
    def count_correct(logits: np.ndarray, labels: np.ndarray) -> int:
        return int(sum(int(p == y) for p, y in zip(Reference.argmax_rows(logits), labels)))

    @staticmethod
    def sgd_update(param: np.ndarray, grad: np.ndarray, lr: float, *,
                   velocity: np.ndarray | None = None, momentum: float = 0.0,
                   nesterov: bool = False, weight_decay: float = 0.0
                   ) -> tuple[np.ndarray, np.ndarray | None]:
        """One SGD step in PyTorch's form: the new ``(param, velocity)``."""
        g = _f64(grad) + weight_decay * _f64(param)
        if velocity is None:
            return _f64(param) - lr * g, None
        velocity = momentum * _f64(velocity) + g
        direction = g + momentum * velocity if nesterov else velocity
        return _f64(param) - lr * direction, velocity

    @staticmethod
    def adam_update(param: np.ndarray, grad: np.ndarray, m: np.ndarray, v: np.ndarray,
                    lr: float, *, step: int, beta1: float = 0.9, beta2: float = 0.999,
                    eps: float = 1e-8, weight_decay: float = 0.0
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One Adam step (Kingma and Ba, with PyTorch's eps): the new ``(param, m, v)``."""
        g = _f64(grad) + weight_decay * _f64(param)
        m = beta1 * _f64(m) + (1 - beta1) * g
        v = beta2 * _f64(v) + (1 - beta2) * g * g
        m_hat, v_hat = m / (1 - beta1 ** step), v / (1 - beta2 ** step)
        return _f64(param) - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


def interface_mismatches(cls: type) -> list[str]:
    """How a backend class departs from the :class:`~nnscratch.Backend` interface: public
    methods whose signatures differ, and public methods the interface does not have."""

    def public(c: type) -> dict[str, inspect.Signature]:
        return {name: inspect.signature(getattr(c, name)) for name in dir(c)
                if not name.startswith("_") and callable(getattr(c, name))}

    expected, actual = public(Backend), public(cls)
    problems = [f"{name}{actual[name]} differs from the interface's {name}{sig}"
                for name, sig in expected.items() if actual[name] != sig]
    problems += [f"{name} is not part of the interface" for name in actual.keys() - expected]
    return problems


# --- inputs shared by the groups ------------------------------------------------------------

DTYPES = ("float32", "float64")
#: The backend every other backend's trajectories are compared with.
REFERENCE_BACKEND = "numpy"
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
#: (inputs, classes): MNIST's, and others that the model takes from the data.
SIZES = ((784, 10), (64, 3), (30, 2))
OPTIMIZER_SETTINGS = (
    {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-3},
    {"optimizer": "adam", "lr": 0.002, "weight_decay": 1e-4},
)
#: Trainings whose float32 run must follow the float64 run: about 300 steps of momentum SGD,
#: and about 100 of each optimizer setting (the sample's 8,000 images make 63 steps an epoch).
PRECISION_RUNS = ({"epochs": 5, "lr": 0.1, "momentum": 0.5},
                  *({"epochs": 2, **setting} for setting in OPTIMIZER_SETTINGS))


def _host(backend: Any, a: Any) -> np.ndarray:
    return np.asarray(backend.to_numpy(a))


def _call(backend: Any, method: str, *arrays: np.ndarray, **kwargs: Any) -> np.ndarray:
    """``method`` run on backend copies of the host ``arrays``; its result on the host."""
    return _host(backend, getattr(backend, method)(*(backend.asarray(a) for a in arrays),
                                                   **kwargs))


def _normal(seed: int, shape: tuple[int, ...], dtype: str, scale: float = 1.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


def _labels(seed: int, n: int, classes: int = 10) -> np.ndarray:
    return np.random.default_rng(seed + 1).integers(0, classes, size=n)


def _sample() -> Any:
    return load_mnist(Path(__file__).parent / "sample")


def backend_or_skip(name: str) -> Any:
    """The backend ``name``; a pytest skip with the reason if it cannot run here (a failure
    instead if ``NNSCRATCH_REQUIRE_BACKENDS`` lists it)."""
    try:
        return get_backend(name)
    except BackendUnavailableError as exc:
        if name in os.environ.get(REQUIRE_ENV_VAR, "").split(","):
            pytest.fail(f"{exc} ({REQUIRE_ENV_VAR} forbids skipping it)")
        pytest.skip(str(exc))


class _BackendFixtures:
    """The fixtures every group shares; a subclass defines ``backend_name``."""

    @pytest.fixture
    def backend_name(self) -> str:
        raise NotImplementedError("define the backend_name fixture in your subclass")

    @pytest.fixture
    def backend(self, backend_name: str) -> Any:
        return backend_or_skip(backend_name)

    @pytest.fixture(params=DTYPES)
    def dtype(self, request: Any) -> str:
        return request.param


# --- the groups -------------------------------------------------------------------------------

class OperationsSuite(_BackendFixtures):
    """Each interface method against the float64 formulas of :class:`Reference` on the same
    inputs (batches of 1, odd sizes, logits of +-1e4), or bit for bit against a plain NumPy
    expression where every backend must give the same bits; the interface's signatures; and
    softmax and cross-entropy properties on generated inputs (hypothesis)."""

    def test_interface_signatures(self, backend: Any) -> None:
        assert interface_mismatches(type(backend)) == []

    @pytest.mark.parametrize("m,k,n", MATMUL_SHAPES)
    @pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True),
                                       (True, True)])
    def test_matmul(self, backend, dtype, m, k, n, ta, tb):
        a, b = _normal(m, (m, k), dtype), _normal(n, (k, n), dtype)
        a_in = np.ascontiguousarray(a.T) if ta else a
        b_in = np.ascontiguousarray(b.T) if tb else b
        out = _call(backend, "matmul", a_in, b_in, transpose_a=ta, transpose_b=tb)
        # each entry sums k products of size ~1: judge errors against sqrt(k)
        assert_same_array(out, Reference.matmul(a, b), dtype, scale=np.sqrt(k), what="matmul")

    @pytest.mark.parametrize("n", BATCHES)
    def test_pixels_to_float(self, backend, dtype, n):
        pixels = np.random.default_rng(n).integers(0, 256, size=(n, 784), dtype=np.uint8)
        pixels[0, :256] = np.arange(256)  # every pixel value at least once
        out = _call(backend, "pixels_to_float", pixels, dtype=dtype)
        assert_same_array(out, Reference.pixels_to_float(pixels), dtype, what="pixels_to_float")
        # dividing by 255 is correctly rounded: every backend must give these very bits
        _assert_identical(out, pixels.astype(dtype) / np.asarray(255, dtype), "pixels_to_float")
        rows = np.array([n - 1, 0, n // 2, 0])
        gathered = _call(backend, "pixels_to_float", pixels, dtype=dtype,
                         rows=backend.asarray(rows))
        _assert_identical(gathered, pixels[rows].astype(dtype) / np.asarray(255, dtype),
                          "pixels_to_float with rows")
        floats = np.linspace(0, 1, n * 784).reshape(n, 784)  # already scaled: only cast
        _assert_identical(_call(backend, "pixels_to_float", floats, dtype=dtype),
                          floats.astype(dtype), "pixels_to_float of floats")

    @pytest.mark.parametrize("n,d,h", PIXELS_MATMUL_SHAPES)
    def test_pixels_matmul(self, backend, dtype, n, d, h):
        pixels = np.random.default_rng(n).integers(0, 256, size=(n, d), dtype=np.uint8)
        w, grad = _normal(h, (d, h), dtype), _normal(h + 1, (n, h), dtype)
        floats = Reference.pixels_to_float(pixels)
        # sums of d (forward) or n (backward) products of size up to ~1: judged against sqrt
        for images in (pixels, floats.astype(dtype)):
            assert_same_array(_call(backend, "pixels_matmul", images, w),
                              Reference.matmul(floats, w), dtype, scale=np.sqrt(d),
                              what=f"pixels_matmul of {images.dtype}")
            assert_same_array(_call(backend, "pixels_matmul_backward", images, grad),
                              Reference.matmul(floats.T, grad), dtype, scale=np.sqrt(n),
                              what=f"pixels_matmul_backward of {images.dtype}")

    def test_take_rows(self, backend):
        labels = np.arange(37, dtype=np.int64) % 10
        rows = np.array([36, 0, 5, 5])
        _assert_identical(_call(backend, "take_rows", labels, rows), labels[rows], "take_rows")

    @pytest.mark.parametrize("n,d", [(1, 10), (13, 17), (128, 128), (128, 800)])
    def test_bias_layers(self, backend, dtype, n, d):
        z, bias = _normal(d, (n, d), dtype), _normal(d + 1, (d,), dtype)
        assert_same_array(_call(backend, "bias_add", z, bias), Reference.bias_add(z, bias),
                          dtype, what="bias_add")
        activation = _call(backend, "bias_relu", z, bias)
        assert_same_array(activation, Reference.bias_relu(z, bias), dtype, what="bias_relu")
        assert (activation == 0).any() and (activation > 0).any(), "inputs must exercise relu"
        grad = _normal(d + 2, (n, d), dtype)
        # multiplying by 1 or 0 is exact: the mask must keep or clear each bit pattern
        _assert_identical(_call(backend, "bias_relu_backward", grad, activation),
                          np.where(activation > 0, grad, np.zeros((), dtype)),
                          "bias_relu_backward")

    @pytest.mark.parametrize("n", BATCHES)
    @pytest.mark.parametrize("scale", [1.0, 30.0, 1e4])
    def test_softmax_cross_entropy(self, backend, dtype, n, scale):
        logits, labels = _normal(n, (n, 10), dtype, scale), _labels(n, n)
        expected_probs = Reference.softmax(logits)
        softmax = _call(backend, "softmax", logits)
        assert_same_array(softmax, expected_probs, dtype, scale=1.0, what="softmax")
        np.testing.assert_allclose(softmax.sum(axis=1), 1.0, rtol=0, atol=tolerance(dtype)[0])
        loss, probs = backend.softmax_cross_entropy(backend.asarray(logits),
                                                    backend.asarray(labels))
        loss, probs = _host(backend, loss), _host(backend, probs)
        assert_same_array(probs, expected_probs, dtype, scale=1.0, what="probs")
        expected_loss = Reference.cross_entropy(logits, labels)
        # the loss is a difference of terms as large as the logits: judge it against them
        assert_same_array(loss, expected_loss, dtype, scale=max(scale, expected_loss),
                          what="loss")

    @pytest.mark.parametrize("n", BATCHES)
    def test_softmax_cross_entropy_backward(self, backend, dtype, n):
        logits, labels = _normal(n, (n, 10), dtype, 3.0), _labels(n, n)
        probs = Reference.softmax(logits).astype(dtype)
        grad = _call(backend, "softmax_cross_entropy_backward", probs, labels)
        assert_same_array(grad, Reference.softmax_cross_entropy_backward(probs, labels), dtype,
                          scale=1.0 / n, what="softmax_cross_entropy_backward")
        np.testing.assert_allclose(grad.sum(axis=1), 0.0, rtol=0, atol=tolerance(dtype)[0])
        # a block of a batch of 1,000 rows: the mean is over the batch
        grad = _call(backend, "softmax_cross_entropy_backward", probs, labels, batch_rows=1000)
        assert_same_array(grad, Reference.softmax_cross_entropy_backward(probs, labels) * n / 1000,
                          dtype, scale=1.0 / 1000, what="softmax_cross_entropy_backward of a block")

    @pytest.mark.parametrize("shape", [(10,), (784, 10), (3, 5)])
    def test_accumulate(self, backend, dtype, shape):
        total, part = _normal(1, shape, dtype), _normal(2, shape, dtype)
        expected = total + part  # one correctly rounded addition: every backend's bits
        _assert_identical(_call(backend, "accumulate", total, part), expected, "accumulate")

    @pytest.mark.parametrize("n,d", [(1, 10), (13, 17), (128, 800), (60_000, 10)])
    def test_sum_rows(self, backend, dtype, n, d):
        a = _normal(n, (n, d), dtype)
        assert_same_array(_call(backend, "sum_rows", a), Reference.sum_rows(a), dtype,
                          scale=np.sqrt(n), what="sum_rows")

    def test_argmax_rows_and_count_correct(self, backend, dtype):
        logits, labels = _normal(5, (200, 10), dtype), _labels(5, 200)
        columns = _call(backend, "argmax_rows", logits)
        assert columns.dtype.kind in "iu", f"argmax_rows: dtype {columns.dtype} is not integer"
        np.testing.assert_array_equal(columns, Reference.argmax_rows(logits))
        count = _call(backend, "count_correct", logits, labels)
        assert count.shape == () and count.dtype.kind in "iu", f"count_correct: {count!r}"
        assert int(count) == Reference.count_correct(logits, labels)

    @pytest.mark.parametrize("momentum,nesterov,weight_decay", SGD_SETTINGS)
    def test_sgd_update(self, backend, dtype, momentum, nesterov, weight_decay):
        shape, lr = (784, 33), 0.1
        param, grads = _normal(1, shape, dtype), [_normal(s, shape, dtype) for s in (2, 3)]
        on_backend = backend.asarray(param)
        velocity = backend.zeros(shape, dtype) if momentum else None
        expected, expected_velocity = param, (np.zeros(shape) if momentum else None)
        for g in grads:
            backend.sgd_update(on_backend, backend.asarray(g), lr, velocity=velocity,
                               momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
            expected, expected_velocity = Reference.sgd_update(
                expected, g, lr, velocity=expected_velocity, momentum=momentum,
                nesterov=nesterov, weight_decay=weight_decay)
        assert_same_array(_host(backend, on_backend), expected, dtype, what="sgd_update param")
        if momentum:
            assert_same_array(_host(backend, velocity), expected_velocity, dtype,
                              what="sgd_update velocity")

    @pytest.mark.parametrize("weight_decay", [0.0, 0.01])
    def test_adam_update(self, backend, dtype, weight_decay):
        shape, lr = (784, 33), 0.01
        param = _normal(1, shape, dtype)
        # gradients of very different sizes: Adam's step must not depend on their scale
        grads = [_normal(s, shape, dtype, scale) for s, scale in ((2, 1.0), (3, 1e-3), (4, 30))]
        state = [backend.asarray(param), backend.zeros(shape, dtype), backend.zeros(shape, dtype)]
        expected = (param, np.zeros(shape), np.zeros(shape))  # param, m, v
        for step, g in enumerate(grads, start=1):
            backend.adam_update(state[0], backend.asarray(g), state[1], state[2], lr,
                                step=step, weight_decay=weight_decay)
            expected = Reference.adam_update(expected[0], g, expected[1], expected[2], lr,
                                             step=step, weight_decay=weight_decay)
        for what, actual, wanted in zip(("param", "m", "v"), state, expected):
            assert_same_array(_host(backend, actual), wanted, dtype, what=f"adam_update {what}")

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
        # rounding a logit moves it by up to half an ulp of the largest magnitude
        size = float(np.abs(logits).max()) + abs(shift) + 1
        loss, probs = backend.softmax_cross_entropy(backend.asarray(logits),
                                                    backend.asarray(labels))
        loss, probs = float(_host(backend, loss)), _host(backend, probs)
        assert np.isfinite(loss) and loss >= 0 and np.isfinite(probs).all()
        assert abs(loss - Reference.cross_entropy(logits, labels)) <= rtol * size
        np.testing.assert_allclose(probs, Reference.softmax(logits), rtol=0, atol=rtol * size)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=0, atol=rtol)
        shifted_loss, shifted = backend.softmax_cross_entropy(backend.asarray(logits + shift),
                                                              backend.asarray(labels))
        np.testing.assert_allclose(_host(backend, shifted), probs, rtol=0, atol=rtol * size)
        assert abs(float(_host(backend, shifted_loss)) - loss) <= rtol * size
        grad = _call(backend, "softmax_cross_entropy_backward", probs, labels)
        np.testing.assert_allclose(grad.sum(axis=1), 0.0, rtol=0, atol=rtol)

    @settings(max_examples=40, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(n=st.integers(1, 40), k=st.integers(1, 40), d=st.integers(1, 40),
           dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2 ** 16))
    def test_generated_shapes_against_reference(self, backend, n, k, d, dtype, seed):
        """Sizes no fixed case picks (a backend may split work into blocks or threads)."""
        a, w = _normal(seed, (n, k), dtype), _normal(seed + 1, (k, d), dtype)
        assert_same_array(_call(backend, "matmul", a, w), Reference.matmul(a, w), dtype,
                          scale=np.sqrt(k), what="matmul")
        bias = _normal(seed + 2, (d,), dtype)
        assert_same_array(_call(backend, "bias_relu", a @ w, bias),
                          Reference.bias_relu(a @ w, bias), dtype, what="bias_relu")
        assert_same_array(_call(backend, "sum_rows", a), Reference.sum_rows(a), dtype,
                          scale=np.sqrt(n), what="sum_rows")
        labels = _labels(seed, n, k)
        loss, probs = backend.softmax_cross_entropy(backend.asarray(a), backend.asarray(labels))
        assert_same_array(_host(backend, probs), Reference.softmax(a), dtype, scale=1.0,
                          what="probs")
        expected_loss = Reference.cross_entropy(a, labels)
        assert_same_array(_host(backend, loss), expected_loss, dtype,
                          scale=max(float(np.abs(a).max()), expected_loss), what="loss")


class GradientSuite(_BackendFixtures):
    """Analytic gradients against central finite differences, in float64."""

    @pytest.mark.parametrize("hidden", [(8,), (6, 5)])
    @pytest.mark.parametrize("sizes", SIZES, ids=lambda sizes: "%d-inputs-%d-classes" % sizes)
    def test_gradients_match_finite_differences(self, backend, hidden, sizes):
        assert gradient_check_error(backend, hidden, sizes=sizes) <= 1e-6

    def test_loss_gradient_matches_finite_differences(self, backend):
        """softmax_cross_entropy_backward is the derivative of softmax_cross_entropy's loss."""
        logits, labels, h = _normal(7, (5, 10), "float64", 3.0), _labels(7, 5), 1e-6

        def loss(z: np.ndarray) -> float:
            value, _ = backend.softmax_cross_entropy(backend.asarray(z), backend.asarray(labels))
            return float(_host(backend, value))

        numeric = np.empty_like(logits)
        for index in np.ndindex(*logits.shape):
            step = np.zeros_like(logits)
            step[index] = h
            numeric[index] = (loss(logits + step) - loss(logits - step)) / (2 * h)
        _, probs = backend.softmax_cross_entropy(backend.asarray(logits), backend.asarray(labels))
        exact = _host(backend, backend.softmax_cross_entropy_backward(probs,
                                                                      backend.asarray(labels)))
        error = np.linalg.norm(numeric - exact) / (np.linalg.norm(numeric) + np.linalg.norm(exact))
        assert error <= 1e-6


    @pytest.mark.parametrize("hidden", [(16,), (6, 5)])
    @pytest.mark.parametrize("pixels", [True, False], ids=["uint8", "floats"])
    def test_blocked_gradients_match_one_pass(self, backend, dtype, hidden, pixels):
        """A batch too big for the backend's ``block_bytes`` is taken in blocks of rows (here
        three, the last shorter): its loss, correct count and gradients equal the one-pass
        result within the dtype's rounding."""
        data = synthetic_data(784, 10, n=3000)
        x, y = data.x_train[:2501], data.y_train[:2501]
        images = backend.asarray(x if pixels else Reference.pixels_to_float(x).astype(dtype))
        labels = backend.asarray(y)
        model = MLP(hidden, backend=backend, dtype=dtype, init="xavier", seed=5)
        one_pass = MLP.from_params(model.params(), backend="numpy", dtype="float64")
        loss, correct, grads = one_pass.gradients(Reference.pixels_to_float(x), y)
        with _blocks_of_at_least(backend, 1):
            assert model.block_rows(len(x)) < len(x)  # blocks, or this would test nothing
            block_loss, block_correct, block_grads = model.gradients(images, labels)
        assert int(_host(backend, block_correct)) == int(correct)
        assert_same_array(_host(backend, block_loss), float(loss), dtype,
                          scale=float(loss), what="blocked loss")
        for name, expected in grads.items():
            # each entry sums one term per row: judged against the sum of the terms' sizes
            assert_same_array(_host(backend, block_grads[name]), expected, dtype,
                              scale=float(np.abs(expected).max()) * np.sqrt(len(x)),
                              what=f"blocked {name}")


@contextlib.contextmanager
def _blocks_of_at_least(backend: Any, block_bytes: int) -> Iterator[None]:
    """``backend`` with its ``block_bytes`` set (blocks of the fewest rows, for 1) meanwhile."""
    had = "block_bytes" in vars(backend)
    saved = backend.block_bytes
    backend.block_bytes = block_bytes
    try:
        yield
    finally:
        if had:
            backend.block_bytes = saved
        else:
            del backend.block_bytes


class _LossRecorder(Callback):
    """The mean loss of the batches of each step that reported it, by step number counted from
    the start of training."""

    def __init__(self) -> None:
        self.losses: dict[int, float] = {}
        self.offset, self.total, self.seen = 0, 0.0, 0

    def on_epoch_start(self, epoch: int, epochs: int, steps: int) -> None:
        self.offset, self.total, self.seen = (epoch - 1) * steps, 0.0, 0

    def on_loss(self, step: int, seen: int, running_loss: float) -> None:
        # The epoch's running mean smooths a fault away; the difference of its running totals
        # gives the loss of the steps since the last report (float64: off by about 1e-14).
        total = running_loss * seen
        self.losses[self.offset + step] = (total - self.total) / (seen - self.seen)
        self.total, self.seen = total, seen


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(_f64(a) - _f64(b)))) / (float(np.max(np.abs(b))) or 1.0)


class TrajectorySuite(_BackendFixtures):
    """Whole trainings on the bundled sample: step by step against the NumPy backend from the
    same seed on the same batches, float32 against the backend's own float64, the same seed
    twice bit for bit, and divergence named with its epoch and step."""

    @staticmethod
    def skip_if_reference(backend: Any) -> None:
        if backend.name == REFERENCE_BACKEND:
            pytest.skip(f"{REFERENCE_BACKEND} is the reference the other backends' trajectories "
                        f"are compared with; test_float32_training_follows_float64 checks it")

    @pytest.mark.parametrize("sizes", SIZES[1:], ids=lambda sizes: "%d-inputs-%d-classes" % sizes)
    def test_training_at_other_sizes_matches_reference(self, backend, dtype, sizes):
        """Data of other sizes than MNIST's (the model takes its sizes from the data)."""
        self.skip_if_reference(backend)
        comparison = compare_backends(REFERENCE_BACKEND, backend.name, synthetic_data(*sizes),
                                      steps=100, dtype=dtype, hidden=(16,), batch_size=32,
                                      lr=0.1, momentum=0.5)
        assert comparison.failures() == []

    def test_training_trajectory_matches_reference(self, backend, dtype):
        self.skip_if_reference(backend)
        comparison = compare_backends(REFERENCE_BACKEND, backend.name, _sample(), steps=300,
                                      dtype=dtype, hidden=(64,), lr=0.1, momentum=0.5)
        assert comparison.failures() == []
        # the same decisions on (nearly) every test image: 2,000 images, at most 2 may differ
        assert abs(comparison.other_accuracy - comparison.reference_accuracy) <= 0.001

    @pytest.mark.parametrize("optimizer", OPTIMIZER_SETTINGS)
    def test_training_with_each_optimizer_matches_reference(self, backend, dtype, optimizer):
        self.skip_if_reference(backend)
        comparison = compare_backends(REFERENCE_BACKEND, backend.name, _sample(), steps=100,
                                      dtype=dtype, hidden=(64,), **optimizer)
        assert comparison.failures() == []

    @pytest.mark.parametrize("run", PRECISION_RUNS, ids=["sgd", "nesterov", "adam"])
    def test_float32_training_follows_float64(self, backend, run):
        """The float32 training stays within :func:`trajectory_tolerance` of the float64 one,
        batch loss by batch loss and in its final parameters.

        float64 is as good as exact here, so this bounds float32's own rounding by the allowance
        two float32 backends get between each other. Measured with numpy and numba, on the three
        runs: batch losses within 5e-7 relative, at most 0.6% of the bound at any step; final
        parameters within 1.4e-6 relative, at most 1% of it; the same test accuracy. Computing a
        float32 matmul through float16 (about 5e-4 relative) fails it.
        """
        results = {}
        for dtype in ("float64", "float32"):
            recorder = _LossRecorder()
            result = train(_sample(), backend=backend, dtype=dtype, hidden=(64,), progress=False,
                           callback=recorder, **run)
            results[dtype] = (recorder.losses, result)
        (losses64, exact), (losses32, result) = results["float64"], results["float32"]
        assert losses32.keys() == losses64.keys() and losses32
        too_far = [(step, abs(losses32[step] - loss) / loss) for step, loss in losses64.items()
                   if abs(losses32[step] - loss) > trajectory_tolerance("float32", step) * loss]
        assert too_far == [], f"(step, relative difference of the batch loss): {too_far[:5]}"
        steps = max(losses64)
        params, exact_params = result.model.params(), exact.model.params()
        worst = max(_relative(params[name], exact_params[name]) for name in exact_params)
        assert worst <= trajectory_tolerance("float32", steps), f"parameters differ by {worst}"
        assert abs(result.test_accuracy - exact.test_accuracy) <= 0.001

    def test_same_seed_is_bit_identical(self, backend):
        runs = [train(_sample(), backend=backend, hidden=(32,), epochs=1, momentum=0.9,
                      progress=False).model.params() for _ in range(2)]
        for name in runs[0]:
            np.testing.assert_array_equal(runs[0][name], runs[1][name], err_msg=name)

    def test_divergence_names_the_epoch_and_step(self, backend):
        with pytest.raises(TrainingDivergedError,
                           match=r"at epoch 1, step [2-9]: the loss became \S+; the "
                                 r"learning rate \(1e\+06\) is probably too large"):
            train(_sample(), backend=backend, hidden=(32,), epochs=1, lr=1e6, progress=False)


class ResumeSuite(_BackendFixtures):
    """A run interrupted by a real SIGINT and resumed from its checkpoint ends bit for bit where
    the uninterrupted run does."""

    @pytest.mark.parametrize("optimizer", OPTIMIZER_SETTINGS)
    @pytest.mark.parametrize("where", ["inside an epoch", "between epochs"])
    def test_interrupted_and_resumed_run_is_bit_identical(self, backend, optimizer, where,
                                                          tmp_path):
        """Ctrl-C (a real SIGINT, sent to this process after step 20 of epoch 2, or as epoch 1
        ends) and resume give exactly the parameters and metrics of the run that was not
        interrupted."""

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


class BackendAgreementSuite(OperationsSuite, GradientSuite, TrajectorySuite, ResumeSuite):
    """Every check a backend must pass: all four groups, with the one fixture
    ``backend_name``."""


def synthetic_data(n_inputs: int, n_classes: int, n: int = 600, seed: int = 0) -> Any:
    """A learnable data set of other sizes than MNIST's: uint8 images of ``n_inputs`` pixels, a
    noisy copy of one of ``n_classes`` random prototypes each; a sixth of them for testing."""
    from .data import MnistData

    rng = np.random.default_rng(seed)
    prototypes = rng.integers(0, 256, size=(n_classes, n_inputs))
    labels = np.arange(n) % n_classes  # every class in both parts
    rng.shuffle(labels)
    noisy = prototypes[labels] + rng.normal(0, 60, size=(n, n_inputs))
    images = np.clip(noisy, 0, 255).astype(np.uint8)
    cut = n - n // 6
    return MnistData(images[:cut], labels[:cut], images[cut:], labels[cut:],
                     f"synthetic {n_inputs}-pixel images of {n_classes} classes", False)


def gradient_check_error(backend: Any, hidden: tuple[int, ...], h: float = 1e-6, *,
                         sizes: tuple[int, int] = (784, 10)) -> float:
    """The worst relative error between a float64 model's analytic gradients and central
    finite differences, over every bias entry and a subset of weight entries of each layer,
    for a model of ``sizes`` (inputs, classes): six sample digits, or synthetic images."""
    data = _sample() if sizes == (784, 10) else synthetic_data(*sizes)
    x, y = data.x_train[:6], data.y_train[:6]
    model = MLP(hidden, backend=backend, dtype="float64", init="xavier", seed=3,
                n_inputs=sizes[0], n_classes=sizes[1])
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
