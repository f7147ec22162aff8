"""The multi-layer perceptron: forward, backward and loss, written once against the backend.

Nothing here imports an array library: every array operation is a method of the backend, so the
same lines run on NumPy, Numba or CuPy. Notation, with samples as rows (``n`` samples per batch,
``d`` inputs, ``c`` classes; MNIST has d = 784 and c = 10):

    A0 = X                                   (n, d)   pixels scaled to [0, 1]
    Ak = relu(A(k-1) @ Wk + bk)              (n, Hk)  for each hidden layer k
    logits = A(L-1) @ WL + bL                (n, c)
    loss = mean over rows of -log softmax(logits)[label]

and the backward pass, from ``dlogits = (softmax(logits) - onehot(labels)) / n``:

    dWk = A(k-1).T @ dZk,   dbk = sum of the rows of dZk
    dZ(k-1) = (dZk @ Wk.T) * (A(k-1) > 0)
"""

from __future__ import annotations

import contextlib
import math
import operator
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from . import rng as _rng
from ._fileio import check_memory
from .backend import Backend
from .errors import ConfigError, ModelFileError
from .inputs import as_array, as_labels, as_pixels, class_labels, label_codes, scaled_features
from .registry import get_backend
from .settings import DTYPE, DTYPES, LAYER_SIZES, POSITIVE_INT, Rule

__all__ = ["MLP", "load_model", "DTYPES", "N_INPUTS", "N_CLASSES"]

N_INPUTS = 784   # 28 x 28 pixels: MNIST, the default
N_CLASSES = 10   # the digits 0-9

_CLASS_COUNT = Rule("an integer of at least 2", lambda v: POSITIVE_INT.accept(v) and v >= 2, int)


def _layer_sizes(n_inputs: int, hidden: Sequence[int], n_classes: int) -> tuple[int, ...]:
    return (POSITIVE_INT.check("n_inputs", n_inputs), *LAYER_SIZES.check("hidden", hidden),
            _CLASS_COUNT.check("n_classes", n_classes))


def _check_dtype(dtype: str) -> str:
    return DTYPE.check("dtype", dtype)


def _check_classes(classes: Any, n_classes: int | None = None) -> tuple[Any, ...] | None:
    """The outputs' labels as a tuple of Python strings or ints (``n_classes`` of them, when
    given); None for 0, 1, 2..."""
    if classes is None:
        return None
    if isinstance(classes, (str, bytes)) or not hasattr(classes, "__len__"):
        raise ConfigError(f"classes must be a list of labels, one per output; got "
                          f"{type(classes).__name__} {classes!r:.40}")
    labels = tuple(c.item() if hasattr(c, "item") else c for c in classes)  # NumPy scalars
    kinds = {type(c) for c in labels}
    count = len(labels) if n_classes is None else n_classes
    if kinds not in ({str}, {int}) or len(labels) != count or len(set(labels)) != count:
        raise ConfigError(f"classes must be {count} distinct labels, all strings or all "
                          f"integers; got {list(labels)[:5]!r}")
    return labels


def _generator(seed: Any) -> Any:
    """The generator to draw initial weights from: ``seed`` itself when it is one."""
    if hasattr(seed, "bit_generator"):
        return seed
    try:
        valid = not isinstance(seed, bool) and operator.index(seed) >= 0
    except TypeError:  # not an integer at all
        valid = False
    if not valid:
        raise ConfigError(f"seed must be an integer of at least 0 or a numpy.random.Generator; "
                          f"got {seed!r:.40}")
    return _rng.generators(seed)[0]


#: The fewest rows :meth:`MLP.gradients` takes at a time: batches up to this size are never
#: split into blocks, whatever the backend's ``block_bytes``.
MIN_BLOCK_ROWS = 1024

# Training holds each parameter four times (the weights, their gradients and, with Adam, two
# moments) and, per layer, a batch's activations and their gradients; the batch is
# TrainSettings' default. What a model needs beyond that is the data's business.
_PARAMETER_COPIES = 4
_TRAINING_BATCH = 128


def _check_model_memory(sizes: Sequence[int], dtype: str) -> None:
    """Refuse, before anything is allocated, a model too big to train on this machine."""
    parameters = sum(fan_in * fan_out + fan_out for fan_in, fan_out in zip(sizes, sizes[1:]))
    activations = _TRAINING_BATCH * (sizes[0] + 2 * sum(sizes[1:]))
    itemsize = 4 if dtype == "float32" else 8
    shown = "-".join(map(str, sizes))
    check_memory((_PARAMETER_COPIES * parameters + activations) * itemsize,
                 f"training a model of layer sizes {shown} ({parameters:,} {dtype} parameters)",
                 ConfigError)


def _check_param_names(params: Any, sizes: Sequence[int] | None = None) -> int:
    """The number of weight layers in ``params``, a mapping with exactly the arrays ``W1, b1,
    ... WL, bL`` (L from ``sizes`` when given, else from the ``W`` names present)."""
    if not isinstance(params, Mapping):
        raise ConfigError(f"params must be a mapping of arrays named W1, b1, W2, b2, ...; got "
                          f"{type(params).__name__}")
    count = len(sizes) - 1 if sizes is not None else 0
    while sizes is None and f"W{count + 1}" in params:
        count += 1
    expected = {f"{kind}{k}" for k in range(1, count + 1) for kind in "Wb"}
    if count == 0 or set(params) != expected:
        missing = sorted(expected - set(params)) or ["W1"] * (count == 0)
        unexpected = sorted(map(str, set(params) - expected))
        problem = (f"it lacks {', '.join(missing)}" if missing
                   else f"{', '.join(unexpected)} belong to no layer")
        raise ConfigError(f"params must hold W1, b1, W2, b2, ... for each layer: {problem}")
    return count


def _host_shape(value: Any, name: str) -> tuple[int, ...]:
    """The shape of a parameter given as an array (host or backend) or as nested lists."""
    shape = getattr(value, "shape", None)
    return tuple(shape) if shape is not None else as_array(value, f"parameter {name}").shape


@contextlib.contextmanager
def _overflow_unwarned() -> Iterator[None]:
    """A block whose overflows are checked for, so not warned about (NumPy would)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _is_finite(host: Any) -> bool:
    """Whether every value of a host array is finite (NaN propagates into max and min)."""
    return host.size == 0 or (math.isfinite(float(host.max()))
                              and math.isfinite(float(host.min())))


class MLP:
    """A classifier: ReLU hidden layers and a softmax output, from ``n_inputs`` pixels to
    ``n_classes`` classes (by default 28x28 digits to 10 classes: MNIST).

    Parameters are ``W1, b1, W2, b2, ...`` with ``Wk`` of shape (fan_in, fan_out) and ``bk`` of
    shape (fan_out,), held on ``backend`` in ``dtype``.

    Every method that takes images accepts either uint8 pixels (0-255) or floats already scaled
    to [0, 1], as (n, n_inputs) rows or one image (for a square number of inputs, such as
    784, also as (n, 28, 28)); pixel ``p`` and float ``p / 255`` give the same result. Labels are
    the class numbers 0..n_classes-1.
    """

    def __init__(self, hidden: Sequence[int] = (128,), *, backend: str | Backend | None = None,
                 dtype: str = "float32", init: str = "he", seed: Any = 0,
                 n_inputs: int = N_INPUTS, n_classes: int = N_CLASSES,
                 classes: Sequence[Any] | None = None) -> None:
        """A new model with freshly drawn weights.

        ``init`` is ``"he"`` (normal, scaled for ReLU), ``"xavier"`` (Glorot uniform) or
        ``"seed"`` (uniform in [0, 0.01), the blog posts' scheme); biases start at zero.
        ``seed`` is an int or a ``numpy.random.Generator`` to draw them from. ``n_inputs`` and
        ``n_classes`` (at least 2) size the first and last layers. ``classes``, when given, are
        the labels of the outputs (distinct strings or integers; their count sets
        ``n_classes``): :meth:`predict` returns them, and labels given to :meth:`evaluate`
        are taken from them. Without it the classes are 0, 1, 2...

        A model too big to train on this machine (its parameters four times over, for the
        gradients and optimizer state, plus a batch's activations) is refused with a
        :class:`~nnscratch.errors.ConfigError` before anything is allocated.
        """
        self.classes = _check_classes(classes)
        if self.classes is not None:
            n_classes = len(self.classes)
        self.layer_sizes = _layer_sizes(n_inputs, hidden, n_classes)
        #: How inputs are prepared: None for pixels (divided by 255); for features, what
        #: :func:`nnscratch.inputs.fit_scaling` fitted on the training set.
        self.inputs: dict[str, Any] | None = None
        self.dtype = _check_dtype(dtype)
        _check_model_memory(self.layer_sizes, self.dtype)
        self.backend = get_backend(backend)
        generator = _generator(seed)
        self.set_params(_rng.init_params(self.layer_sizes, init, generator))
        self.metadata: dict[str, Any] = {}

    @classmethod
    def from_params(cls, params: Mapping[str, Any], *, backend: str | Backend | None = None,
                    dtype: str | None = None, classes: Sequence[Any] | None = None) -> MLP:
        """A model holding copies of ``params`` (host arrays named ``W1, b1, ...``), whose
        outputs are ``classes`` (default 0, 1, 2...)."""
        count = _check_param_names(params)
        shapes = [_host_shape(params[f"W{k}"], f"W{k}") for k in range(1, count + 1)]
        flat = next((k for k, shape in enumerate(shapes, 1) if len(shape) != 2), None)
        if flat is not None:
            raise ConfigError(f"parameter W{flat} must be a 2-D array; got shape "
                              f"{shapes[flat - 1]}")
        sizes = [shape[1] for shape in shapes]
        model = cls.__new__(cls)
        model.layer_sizes = _layer_sizes(shapes[0][0], sizes[:-1], sizes[-1])
        model.classes = _check_classes(classes, sizes[-1])
        model.inputs = None
        model.dtype = _check_dtype(dtype or str(getattr(params["W1"], "dtype", "float64")))
        model.backend = get_backend(backend)
        model.set_params(params)
        model.metadata = {}
        return model

    def __repr__(self) -> str:
        sizes = "-".join(map(str, self.layer_sizes))
        return f"MLP({sizes}, dtype={self.dtype}, backend={self.backend.name})"

    @property
    def n_layers(self) -> int:
        """The number of weight layers (hidden layers + 1)."""
        return len(self.layer_sizes) - 1

    def set_params(self, params: Mapping[str, Any]) -> None:
        """Replace the parameters with copies of ``params`` (host or backend arrays named
        ``W1, b1, ...`` with this model's shapes), cast to the model's dtype."""
        _check_param_names(params, self.layer_sizes)
        self._params = {}
        for k, (fan_in, fan_out) in enumerate(zip(self.layer_sizes, self.layer_sizes[1:]), 1):
            for name, shape in ((f"W{k}", (fan_in, fan_out)), (f"b{k}", (fan_out,))):
                given = _host_shape(params[name], name)
                if given != shape:
                    raise ConfigError(f"parameter {name} must have shape {shape}; got {given}")
                try:
                    self._params[name] = self.backend.asarray(params[name], dtype=self.dtype)
                except (TypeError, ValueError):  # strings, objects: nothing to cast to floats
                    raise ConfigError(f"parameter {name} must be an array of numbers") from None

    def params(self) -> dict[str, Any]:
        """Copies of the parameters as host NumPy arrays, in the order ``W1, b1, W2, ...``."""
        return {name: self.backend.to_numpy(p).copy() for name, p in self._params.items()}

    # --- the math ----------------------------------------------------------------------------

    def forward(self, x: Any) -> tuple[Any, list[Any]]:
        """Logits (n, c) for ``x``, a backend array (n, d) of uint8 pixels or of floats
        already scaled, plus the layer inputs ``[A0, A1, ...]`` that :meth:`backward` needs."""
        b, p = self.backend, self._params
        activations = [x]
        for k in range(1, self.n_layers):
            x = b.bias_relu(self._product(k, x), p[f"b{k}"])
            activations.append(x)
        logits = b.bias_add(self._product(self.n_layers, x), p[f"b{self.n_layers}"])
        return logits, activations

    def _product(self, k: int, a_prev: Any) -> Any:
        """``A(k-1) @ Wk``. A0 is the images: the backend scales them to [0, 1] as it goes."""
        b, w = self.backend, self._params[f"W{k}"]
        return b.pixels_matmul(a_prev, w) if k == 1 else b.matmul(a_prev, w)

    def _weight_gradient(self, k: int, a_prev: Any, dz: Any) -> Any:
        """``dWk = A(k-1).T @ dZk``, with A0 the images as in :meth:`_product`."""
        b = self.backend
        if k == 1:
            return b.pixels_matmul_backward(a_prev, dz)
        return b.matmul(a_prev, dz, transpose_a=True)

    def backward(self, dlogits: Any, activations: list[Any]) -> dict[str, Any]:
        """Gradients of the loss for every parameter, from the gradient with respect to the
        logits and the activations saved by :meth:`forward`. ``dlogits`` is overwritten."""
        b, p = self.backend, self._params
        grads: dict[str, Any] = {}
        dz = dlogits
        for k in range(self.n_layers, 0, -1):
            a_prev = activations[k - 1]
            grads[f"W{k}"] = self._weight_gradient(k, a_prev, dz)
            grads[f"b{k}"] = b.sum_rows(dz)
            if k > 1:
                dz = b.bias_relu_backward(b.matmul(dz, p[f"W{k}"], transpose_b=True), a_prev)
        return grads

    def gradients(self, x: Any, labels: Any) -> tuple[Any, Any, dict[str, Any]]:
        """One forward and backward pass on backend arrays: ``x`` (n, d) as in
        :meth:`forward`, ``labels`` integer (n,). Returns the mean loss and the number of correct
        predictions (both 0-d backend arrays, not waited for) and the gradients.

        A batch larger than :meth:`block_rows` (a full batch, say) is taken in blocks of rows:
        each block's forward pass, loss gradient and weight-gradient terms are computed while
        its images are in the cache, and the terms are summed. The result equals the one-pass
        result within the dtype's rounding; batches of a block or less take the one pass."""
        n = x.shape[0]
        size = self.block_rows(n)
        if n <= size:
            return self._block_gradients(self._block_inputs(x), labels, n)
        blocks = -(-n // size)
        size = -(-n // blocks)
        size += -size % 8  # blocks start on rows a backend's kernels can take in pairs or fours
        b = self.backend
        loss = correct = grads = None
        for start in range(0, n, size):
            rows = self._block_inputs(x[start:start + size])
            part_loss, part_correct, part = self._block_gradients(
                rows, labels[start:start + size], n)
            part_loss = part_loss * (rows.shape[0] / n)  # the block's share of the mean
            if grads is None:
                loss, correct, grads = part_loss, part_correct, part
                continue
            loss, correct = loss + part_loss, correct + part_correct
            for name, total in grads.items():
                b.accumulate(total, part[name])
        return loss, correct, grads

    def block_rows(self, n: int) -> int:
        """How many rows of an ``n``-row batch a training step takes at a time: as many as
        fit the backend's :attr:`~nnscratch.Backend.block_bytes` of inputs (uint8 for a backend
        that reads pixels directly, else floats), activations and their gradients, at least
        :data:`MIN_BLOCK_ROWS` (so mini-batches are one block), at most ``n``."""
        itemsize = 4 if self.dtype == "float32" else 8
        pixel = 1 if self.backend.reads_pixels_directly else itemsize
        per_row = pixel * self.layer_sizes[0] + itemsize * 2 * sum(self.layer_sizes[1:])
        return min(n, max(MIN_BLOCK_ROWS, self.backend.block_bytes // per_row))

    def _block_inputs(self, x: Any) -> Any:
        """The rows ``x`` as the first layer's two products take them: uint8 pixels scaled to
        floats once (not once per product), unless the backend reads pixels directly."""
        if str(x.dtype) == "uint8" and not self.backend.reads_pixels_directly:
            return self.backend.pixels_to_float(x, self.dtype)
        return x

    def _block_gradients(self, x: Any, labels: Any, batch_rows: int) -> tuple[Any, Any, Any]:
        """:meth:`gradients` of the rows ``x``, part of a batch of ``batch_rows`` rows: the
        loss is these rows' mean, the gradients their share of the batch's."""
        b = self.backend
        logits, activations = self.forward(x)
        correct = b.count_correct(logits, labels)
        loss, probs = b.softmax_cross_entropy(logits, labels)
        dlogits = b.softmax_cross_entropy_backward(
            probs, labels, None if batch_rows == x.shape[0] else batch_rows)
        return loss, correct, self.backward(dlogits, activations)

    def fit_batch(self, x: Any, labels: Any, optimizer: Any) -> tuple[Any, Any]:
        """One training step on backend arrays (see :meth:`gradients`); returns the batch's
        mean loss and correct count as 0-d backend arrays, measured before the update."""
        loss, correct, grads = self.gradients(x, labels)
        optimizer.step(self.backend, self._params, grads)
        return loss, correct

    # --- working with host arrays --------------------------------------------------------------

    def _inputs(self, x: Any) -> Any:
        if self.inputs is not None:  # features, prepared as the training set's were
            features = scaled_features(x, self.inputs, self.layer_sizes[0])
            return self.backend.asarray(features, dtype=self.dtype)
        # read only: no copy on the CPU
        pixels = self.backend.asarray(as_pixels(x, self.layer_sizes[0]), copy=False)
        return self.backend.pixels_to_float(pixels, self.dtype)

    def _labels(self, y: Any, n: int) -> Any:
        if self.classes is None:
            codes = as_labels(y, n, self.layer_sizes[-1])
        else:
            codes = label_codes(y, n, self.classes)
        return self.backend.asarray(codes, copy=False)

    def predict_proba(self, x: Any) -> Any:
        """Class probabilities, a host array (n, c) of the model's dtype. Outputs that overflow
        the model's dtype (huge weights) are computed in float64; a model whose outputs
        overflow even that raises :class:`~nnscratch.errors.ModelFileError`."""
        return self.predict_proba_arrays(self._inputs(x))

    def predict_proba_arrays(self, x: Any) -> Any:
        """:meth:`predict_proba` for a backend array already prepared (floats, or pixels)."""
        model, logits = self._finite_logits(x)
        with _overflow_unwarned():  # logits far below the largest give exp(-inf) = 0
            probabilities = model.backend.softmax(logits)
        return model.backend.to_numpy(probabilities).astype(self.dtype, copy=False)

    def predict(self, x: Any) -> Any:
        """Predicted classes, a host array (n,): the model's :attr:`classes` (strings or
        integers) when it has them, else the class numbers (the digits, for MNIST)."""
        model, logits = self._finite_logits(self._inputs(x))
        codes = model.backend.to_numpy(model.backend.argmax_rows(logits))
        return codes if self.classes is None else class_labels(codes, self.classes)

    def evaluate(self, x: Any, y: Any) -> dict[str, float]:
        """``{"accuracy": fraction correct, "loss": mean cross-entropy, "n": count}``."""
        inputs = self._inputs(x)
        return self.evaluate_arrays(inputs, self._labels(y, inputs.shape[0]))

    def evaluate_arrays(self, x: Any, labels: Any, widen: bool = True) -> dict[str, float]:
        """:meth:`evaluate` for backend arrays already prepared (floats, integer labels).
        ``widen=False`` returns a loss that overflows as it is (the training loop reports it
        as divergence) instead of computing it again in float64."""
        scores = self._scores(x, labels)
        if widen and not math.isfinite(scores["loss"]):  # see _finite_logits
            wide = self._in_float64()
            scores = wide._scores(wide._widened_inputs(x), labels)
            if not math.isfinite(scores["loss"]):
                raise self._overflow()
        return scores

    def _scores(self, x: Any, labels: Any) -> dict[str, float]:
        b = self.backend
        with _overflow_unwarned():
            logits, _ = self.forward(x)
            correct = b.count_correct(logits, labels)
            loss, _ = b.softmax_cross_entropy(logits, labels)
        n = int(labels.shape[0])
        return {"accuracy": int(b.to_numpy(correct)) / n, "loss": float(b.to_numpy(loss)),
                "n": n}

    # Finite weights can still overflow a float32 forward pass (a tampered or damaged model,
    # weights near 1e38): its logits become inf, and softmax turns inf - inf into NaN. The
    # outputs are then computed again in float64, whose range no float32 model of a few layers
    # can overflow; a model that overflows even that is refused.

    def _finite_logits(self, x: Any) -> tuple[MLP, Any]:
        """The logits of prepared ``x`` (a backend array), all finite, and the model (this one,
        or its float64 copy) that computed them."""
        logits = self._quiet_forward(x)
        if _is_finite(self.backend.to_numpy(logits)):
            return self, logits
        wide = self._in_float64()
        logits = wide._quiet_forward(wide._widened_inputs(x))
        if not _is_finite(wide.backend.to_numpy(logits)):
            raise self._overflow()
        return wide, logits

    def _quiet_forward(self, x: Any) -> Any:
        with _overflow_unwarned():
            logits, _ = self.forward(x)
        return logits

    def _in_float64(self) -> MLP:
        if self.dtype == "float64":
            raise self._overflow()
        return MLP.from_params(self.params(), backend=self.backend, dtype="float64")

    def _widened_inputs(self, x: Any) -> Any:
        return x if str(x.dtype) in ("uint8", "float64") else self.backend.asarray(x, "float64")

    def _overflow(self) -> ModelFileError:
        largest = max(float(abs(p).max()) for p in self.params().values())
        return ModelFileError(f"{self!r} has weights too large to use (up to {largest:.3g}): "
                              f"its outputs on these inputs overflow even in float64")

    def loss_and_grads(self, x: Any, y: Any) -> tuple[float, dict[str, Any]]:
        """The mean loss on ``(x, y)`` and its gradient for every parameter, as host arrays
        keyed like :meth:`params`. Leaves the parameters unchanged."""
        inputs = self._inputs(x)
        loss, _, grads = self.gradients(inputs, self._labels(y, inputs.shape[0]))
        to_host = self.backend.to_numpy
        return float(to_host(loss)), {name: to_host(grads[name]) for name in self._params}

    def save(self, path: str | os.PathLike, **metadata: Any) -> Path:
        """Write the model to ``path`` (an ``.npz`` of the arrays plus JSON metadata; the file
        appears whole or not at all). Extra keyword arguments are stored in the metadata."""
        from .serialize import write_model_file

        info = {**self.metadata, **metadata, "layer_sizes": list(self.layer_sizes),
                "dtype": self.dtype, "activation": "relu", "backend": self.backend.name}
        info.pop("classes", None)
        info.pop("inputs", None)
        if self.classes is not None:
            info["classes"] = list(self.classes)
        if self.inputs is not None:
            info["inputs"] = self.inputs
        return write_model_file(path, self.params(), info)


def load_model(path: str | os.PathLike, backend: str | Backend | None = None) -> MLP:
    """Read a model file written by :meth:`MLP.save`, onto ``backend``.

    The file is validated (format, shapes, dtypes, finite values) and never unpickled; any
    problem raises :class:`~nnscratch.errors.ModelFileError` naming the file.
    """
    from .serialize import read_model_file

    params, metadata = read_model_file(path)
    model = MLP.from_params(params, backend=backend, dtype=metadata["dtype"],
                            classes=metadata.get("classes"))
    model.inputs = metadata.get("inputs")
    model.metadata = metadata
    return model
