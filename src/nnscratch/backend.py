"""The array-backend interface.

A backend is an instance of a :class:`Backend` subclass. The base class is concrete: every method
has a default written against ``self.xp``, an array module with NumPy's API (``numpy`` itself,
``cupy``...). A backend sets ``xp`` and overrides only the methods it does faster. The model code
in :mod:`nnscratch.model` calls nothing but these methods, so the same forward, backward and update
math runs on every backend. Finding a backend by name is :mod:`nnscratch.registry`'s job.

Conventions for every method:

* Samples are rows. ``x`` is (n, d_in); a weight matrix is (d_in, d_out); a bias is (d_out,).
* "float" means the model's dtype, float32 or float64; inputs and outputs share it unless the
  docstring says otherwise. No method promotes float32 to float64.
* Arrays are the backend's own (``xp`` arrays) unless the docstring says "host": then they are
  NumPy arrays in main memory.
* A method that says it works in place overwrites the named argument and returns it; the caller
  must not rely on that argument's old value afterwards.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["Backend"]

Array = Any  # an array of the backend's array module

# Deprecated aliases, kept for one release: these names moved to nnscratch.registry. They are
# looked up on first use (PEP 562) because registry imports this module.
_MOVED_TO_REGISTRY = frozenset({
    "KNOWN_BACKENDS", "ENV_VAR", "ENTRY_POINT_GROUP", "BackendInfo", "get_backend", "use_backend",
    "available_backends", "selected_backend_name", "_instances",
})


def __getattr__(name: str) -> Any:
    """``nnscratch.backend.get_backend`` and the other moved names, from :mod:`nnscratch.registry`
    (deprecated: import them from there)."""
    if name in _MOVED_TO_REGISTRY:
        from . import registry

        return getattr(registry, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: Every how many steps :meth:`Backend.adam_update` sets moments that have become subnormal
#: to 0. A weight whose gradient stays 0 (one reading a pixel that is blank in every image of a
#: stretch of batches) has its moments multiplied by beta each step until they are subnormal,
#: where beta * m rounds back to m: they stay there for good, and on a CPU arithmetic on
#: subnormal floats is 5-6 times slower (W1's update of 784-800-10: 2.7 against 13-16 ms).
#: Over 100 epochs more and more of W1's moments got there, and an epoch of 784-800-10 grew
#: from 3.0 to 4.5 s. Checking every step would cost 0.55 ms a step; every 16th step costs a
#: sixteenth of it, and no moment stays subnormal for more than 16 steps. The values set to 0
#: are below 1.2e-38 (float32): the updates they make are far below the parameters' precision.
FLUSH_EVERY = 16


class Backend:
    """Array operations the model needs, with reference defaults written against ``self.xp``.

    Subclasses set :attr:`name` and :attr:`xp` and may override any method. The public methods are
    the whole interface: the agreement suite in :mod:`nnscratch.testing` checks each of them
    against the NumPy reference, and checks that a subclass keeps their signatures.
    """

    name: str = "base"
    xp: Any = None
    #: How many training steps may run before the trainer reads their losses back to the host to
    #: check that they are finite. 1 suits CPU backends, where reading a 0-d array costs nothing;
    #: a device backend sets more, so that the check does not make every step wait for the device.
    loss_check_interval: int = 1
    #: True when :meth:`pixels_matmul` and its backward read uint8 images faster than floats:
    #: full-batch training then keeps the images as uint8 instead of scaling a float copy once.
    reads_pixels_directly: bool = False
    #: About how many bytes a training step's inputs, activations and their gradients may
    #: take: a batch whose rows need more is computed in blocks of rows (never fewer than
    #: ``nnscratch.model.MIN_BLOCK_ROWS``), whose gradients are summed. Each block's images are
    #: then read once, while they are in the cache, for the forward pass and the weight
    #: gradients, and the step's memory grows with the block, not with the batch.
    block_bytes: int = 16 * 2**20
    #: True when the backend computes on the host's CPU cores, where other work in the process
    #: (distorting the next epoch's images) competes with it for them; False on a GPU.
    host_cores: bool = True

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Why this backend cannot run here (a missing library or device), or None if it can.

        Called by the registry before the backend is created; must be cheap and must not raise.
        """
        return None

    def __repr__(self) -> str:
        return f"<nnscratch backend {self.name!r}>"

    # --- moving data ---------------------------------------------------------------------

    def asarray(self, a: Any, dtype: str | None = None, *, copy: bool = True) -> Array:
        """A backend array holding the host array (or array-like) ``a``, optionally cast to
        ``dtype``. By default a new copy that never shares memory with ``a``: the model updates
        its parameters in place. With ``copy=False``, for inputs that are only read, the result
        may be ``a`` itself when it already is a backend array of that dtype (on the CPU: no
        needless copy of the images to predict).

        Integer pixels stay uint8 and labels stay integers unless ``dtype`` says otherwise.
        """
        if copy:
            return self.xp.array(a, dtype=dtype, copy=True)
        return self.xp.asarray(a, dtype=dtype)

    def to_numpy(self, a: Array) -> Any:
        """The contents of a backend array (or 0-d scalar) as a host NumPy array, once pending
        work is done. On CPU backends it may share memory with ``a``: copy it to keep it."""
        import numpy

        return numpy.asarray(a)

    def zeros(self, shape: tuple[int, ...], dtype: str) -> Array:
        """A new array of zeros."""
        return self.xp.zeros(shape, dtype=dtype)

    def synchronize(self) -> None:
        """Wait until all queued work is done (for timing). A no-op on synchronous backends."""

    # --- inputs ----------------------------------------------------------------------------

    def pixels_to_float(self, pixels: Array, dtype: str, rows: Array | None = None) -> Array:
        """Scale images to floats in [0, 1]: a new (n, d) array of ``dtype``.

        ``pixels`` is (N, d): uint8 values 0-255 are divided by 255; float values are taken as
        already scaled and only cast. ``rows``, an optional (n,) integer array, gathers those rows
        first (a shuffled mini-batch), so the gather and the scaling can be one pass.
        """
        if rows is not None:
            pixels = self.xp.take(pixels, rows, axis=0)
        scaled = pixels.astype(dtype)
        if pixels.dtype == self.xp.uint8:
            # Divide rather than multiply by 1/255: division is correctly rounded, so every
            # backend that divides gets bit-identical inputs.
            scaled /= 255
        return scaled

    def take_rows(self, a: Array, rows: Array) -> Array:
        """A new array of the rows ``rows`` (an (n,) integer array) of ``a``."""
        return self.xp.take(a, rows, axis=0)

    # --- forward and backward ----------------------------------------------------------------

    def matmul(self, a: Array, b: Array, *, transpose_a: bool = False,
               transpose_b: bool = False) -> Array:
        """A new matrix product ``op(a) @ op(b)``, where ``op`` transposes when asked.

        Shapes: ``op(a)`` is (m, k), ``op(b)`` is (k, n), the result is (m, n). Both operands share
        one float dtype. Transposing is free: no copy is made.
        """
        return self.xp.matmul(a.T if transpose_a else a, b.T if transpose_b else b)

    def pixels_matmul(self, pixels: Array, w: Array) -> Array:
        """A new (n, h) array: the first layer's product ``pixels_to_float(pixels) @ w``.

        ``pixels`` is (n, d): uint8 images, or floats already scaled to [0, 1] (taken as they
        are); ``w`` is (d, h) float and sets the result's dtype. Taking the images rather than
        their floats lets a backend fold the 1/255 scale into the product and read a quarter of
        the bytes, with no float copy of the images.
        """
        return self.matmul(self._scaled(pixels, w.dtype), w)

    def pixels_matmul_backward(self, pixels: Array, grad: Array) -> Array:
        """A new (d, h) array: the gradient of the first layer's weights,
        ``pixels_to_float(pixels).T @ grad``, for ``pixels`` (n, d) as in :meth:`pixels_matmul`
        and ``grad`` (n, h) float, the gradient with respect to that product.
        """
        return self.matmul(self._scaled(pixels, grad.dtype), grad, transpose_a=True)

    def _scaled(self, pixels: Array, dtype: Any) -> Array:
        """Floats in [0, 1] of ``dtype`` for ``pixels``: the array itself when it already is."""
        if pixels.dtype == dtype:
            return pixels
        return self.pixels_to_float(pixels, dtype)

    def bias_add(self, z: Array, bias: Array) -> Array:
        """In place on ``z`` (n, d): add ``bias`` (d,) to every row."""
        z += bias
        return z

    def bias_relu(self, z: Array, bias: Array) -> Array:
        """In place on ``z`` (n, d): ``max(z + bias, 0)``, the hidden layer's activation."""
        z += bias
        return self.xp.maximum(z, 0, out=z)

    def bias_relu_backward(self, grad: Array, activation: Array) -> Array:
        """In place on ``grad`` (n, d): multiply it by ``activation > 0`` (1 where the output of
        :meth:`bias_relu`, same shape, is positive, else 0). The result is the gradient with
        respect to the pre-activation ``z + bias``.
        """
        grad *= activation > 0
        return grad

    def softmax(self, logits: Array) -> Array:
        """A new (n, c) array of softmax probabilities of ``logits`` (n, c); rows sum to 1.

        Computed from ``logits - max(logits)`` per row, so any finite logits give finite results.
        """
        xp = self.xp
        probs = xp.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        return probs

    def softmax_cross_entropy(self, logits: Array, labels: Array) -> tuple[Array, Array]:
        """Mean cross-entropy loss of ``logits`` (n, c) against integer ``labels`` (n,).

        Returns ``(loss, probs)``: ``loss`` is a 0-d float array (left on the backend, so that
        training does not wait for it), ``probs`` the (n, c) softmax. Uses log-sum-exp, so the
        loss is finite for any finite logits. ``logits`` may be overwritten.
        """
        xp = self.xp
        logits -= logits.max(axis=1, keepdims=True)
        probs = xp.exp(logits)
        sums = probs.sum(axis=1, keepdims=True)
        probs /= sums
        correct = logits[xp.arange(len(labels)), labels]
        loss = xp.mean(xp.log(sums[:, 0]) - correct)
        return loss, probs

    def softmax_cross_entropy_backward(self, probs: Array, labels: Array,
                                       batch_rows: int | None = None) -> Array:
        """In place on ``probs`` (n, c): the gradient of the *mean* loss with respect to the
        logits, ``(probs - onehot(labels)) / batch_rows``.

        ``batch_rows`` is the number of rows the mean is over: by default ``n``; a block of a
        larger batch (see :attr:`block_bytes`) passes the batch's.
        """
        n = probs.shape[0]
        probs[self.xp.arange(n), labels] -= 1
        probs /= n if batch_rows is None else batch_rows
        return probs

    def sum_rows(self, a: Array) -> Array:
        """A new (d,) array: the sum of the rows of ``a`` (n, d). Gives per-unit bias gradients."""
        return a.sum(axis=0)

    def accumulate(self, total: Array, part: Array) -> Array:
        """In place on ``total``: add ``part`` (same shape and dtype), as when the gradients of
        a batch's blocks are summed."""
        total += part
        return total

    # --- results and updates --------------------------------------------------------------

    def argmax_rows(self, a: Array) -> Array:
        """A new (n,) integer array: the column of the largest value in each row of ``a``."""
        return a.argmax(axis=1)

    def count_correct(self, logits: Array, labels: Array) -> Array:
        """A 0-d integer array: how many rows of ``logits`` (n, c) have their largest value at
        the column given by ``labels`` (n,). Left on the backend, like the loss.
        """
        return (self.argmax_rows(logits) == labels).sum()

    def sgd_update(self, param: Array, grad: Array, lr: float, *, velocity: Array | None = None,
                   momentum: float = 0.0, nesterov: bool = False,
                   weight_decay: float = 0.0) -> None:
        """In place: one step of stochastic gradient descent on ``param``.

        ``weight_decay`` first adds the L2 term: ``grad += weight_decay * param``. Without
        ``velocity``: ``param -= lr * grad``. With it (same shape and dtype as ``param``):
        ``velocity = momentum * velocity + grad``, then ``param -= lr * velocity``, or with
        ``nesterov`` ``param -= lr * (grad + momentum * velocity)`` (PyTorch's forms). Scalars are
        Python floats and do not change the dtype. ``grad`` may be overwritten; ``velocity`` is
        updated in place.
        """
        if weight_decay:
            grad += weight_decay * param
        if velocity is not None:
            velocity *= momentum
            velocity += grad
            if nesterov:
                grad += momentum * velocity
                grad *= lr
            else:
                self.xp.multiply(velocity, lr, out=grad)
        else:
            grad *= lr
        param -= grad

    def adam_update(self, param: Array, grad: Array, m: Array, v: Array, lr: float, *,
                    step: int, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                    weight_decay: float = 0.0) -> None:
        """In place: one Adam step on ``param`` (Kingma and Ba; PyTorch's form of it).

        ``m`` and ``v`` (same shape and dtype as ``param``, zeros before the first step) are the
        running first and second moments, updated in place; ``step`` is the 1-based number of
        this update, for the bias corrections. With ``g = grad + weight_decay * param``::

            m = beta1 * m + (1 - beta1) * g
            v = beta2 * v + (1 - beta2) * g * g
            param -= (lr / (1 - beta1**step)) * m / (sqrt(v) / sqrt(1 - beta2**step) + eps)

        Every :data:`FLUSH_EVERY` steps, moments below the dtype's smallest normal number are
        set to 0 (see there). Scalars are Python floats and do not change the dtype. ``grad``
        may be overwritten.
        """
        xp = self.xp
        if weight_decay:
            grad += weight_decay * param
        m *= beta1
        m += (1 - beta1) * grad
        v *= beta2
        grad *= grad
        grad *= 1 - beta2
        v += grad
        if step % FLUSH_EVERY == 0:
            tiny = xp.finfo(m.dtype).tiny
            m[xp.abs(m) < tiny] = 0
            v[v < tiny] = 0
        denominator = xp.sqrt(v, out=grad)
        denominator /= math.sqrt(1 - beta2 ** step)
        denominator += eps
        update = xp.divide(m, denominator, out=grad)
        update *= lr / (1 - beta1 ** step)
        param -= update
