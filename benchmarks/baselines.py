"""The implementations the benchmarks time, each doing the same work for each case.

* ``blog``: BASELINE. The computation of the blog posts this project grew from, re-expressed
  here: samples as *columns* (X is 784 x m), float64, weights (out, in), a softmax over axis 0,
  one-hot label matrices, and the posts' scalar bias gradient (the sum over every entry). It is
  kept as they wrote it, quirks included, because it is what people start from.
* ``plain-numpy``: the same MLP as nnscratch written as direct NumPy code, samples as rows, in the
  case's dtype: what our NumPy backend must not be slower than.
* ``torch``: PyTorch eager on the CPU doing the same work (optional: skipped when not installed).
* ``blas-floor`` (epochs only): FLOOR, not an implementation. Only the two large BLAS products of
  each step (``A0 @ W1`` and ``A0.T @ dZ1``, 469 batches of 128), on images already scaled and
  read in order: what no implementation that calls this BLAS for them can beat, measured in the
  same run, so that a ratio to it does not depend on how fast the machine is that minute.
* ``nnscratch-<backend>``: the library itself, through its public model and training loop.

Every implementation is given uint8 pixels (n, 784) and int64 labels and builds what it needs
in ``prepare`` (not timed); the returned callable does one unit of the case's work.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

import nnscratch
from nnscratch import Trainer

Work = Callable[[], object]


# --- the blog posts' computation (baseline) -----------------------------------------------

class Blog:
    """Full-batch gradient descent as in the posts: features as rows of X, samples as columns."""

    def __init__(self, hidden: int, rng: np.random.Generator) -> None:
        self.W1 = rng.random((hidden, 784)) * 0.01
        self.b1 = np.zeros((hidden, 1))
        self.W2 = rng.random((10, hidden)) * 0.01
        self.b2 = np.zeros((10, 1))

    def forward(self, X: np.ndarray) -> tuple[np.ndarray, ...]:
        Z1 = self.W1.dot(X) + self.b1
        A1 = np.maximum(Z1, 0)
        Z2 = self.W2.dot(A1) + self.b2
        Z2 = Z2 - np.max(Z2, axis=0)
        A2 = np.exp(Z2) / np.sum(np.exp(Z2), axis=0)
        return Z1, A1, A2

    def step(self, X: np.ndarray, Y: np.ndarray, lr: float) -> None:
        m = X.shape[1]
        Z1, A1, A2 = self.forward(X)
        onehot = np.zeros((Y.size, 10))
        onehot[np.arange(Y.size), Y] = 1
        dZ2 = A2 - onehot.T
        dW2 = dZ2.dot(A1.T) / m
        db2 = np.sum(dZ2) / m  # the posts' scalar: summed over units and samples
        dZ1 = self.W2.T.dot(dZ2) * (Z1 > 0)
        dW1 = dZ1.dot(X.T) / m
        db1 = np.sum(dZ1) / m
        self.W1 = self.W1 - lr * dW1
        self.b1 = self.b1 - lr * db1
        self.W2 = self.W2 - lr * dW2
        self.b2 = self.b2 - lr * db2

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.argmax(self.forward(X)[2], axis=0)


def blog_step(x: np.ndarray, y: np.ndarray, dtype: str) -> Work:
    model, X = Blog(10, np.random.default_rng(0)), x.T / 255.0   # the posts scale once, upfront
    return lambda: model.step(X, y, 0.1)


def blog_epoch(x: np.ndarray, y: np.ndarray, hidden: int, dtype: str) -> Work:
    model, X, rng = Blog(hidden, np.random.default_rng(0)), x.T / 255.0, np.random.default_rng(1)

    def epoch() -> None:
        order = rng.permutation(len(y))
        for start in range(0, len(y), 128):
            rows = order[start:start + 128]
            model.step(X[:, rows], y[rows], 0.1)
    return epoch


def blog_inference(x: np.ndarray, hidden: int, dtype: str) -> Work:
    model = Blog(hidden, np.random.default_rng(0))
    return lambda: model.predict(x.T / 255.0)


# --- plain NumPy, samples as rows, in the case's dtype --------------------------------------

def _plain_params(hidden: int, dtype: str) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [(rng.standard_normal((784, hidden)) * np.sqrt(2 / 784)).astype(dtype),
            np.zeros(hidden, dtype), (rng.standard_normal((hidden, 10)) * 0.1).astype(dtype),
            np.zeros(10, dtype)]


def _plain_step(params: list[np.ndarray], X: np.ndarray, y: np.ndarray, lr: float) -> None:
    W1, b1, W2, b2 = params
    A1 = np.maximum(X @ W1 + b1, 0)
    Z2 = A1 @ W2 + b2
    P = np.exp(Z2 - Z2.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    P[np.arange(len(y)), y] -= 1
    P /= len(y)
    dZ1 = (P @ W2.T) * (A1 > 0)
    W2 -= lr * (A1.T @ P)
    b2 -= lr * P.sum(axis=0)
    W1 -= lr * (X.T @ dZ1)
    b1 -= lr * dZ1.sum(axis=0)


def plain_step(x: np.ndarray, y: np.ndarray, dtype: str) -> Work:
    params, X = _plain_params(10, dtype), (x / np.asarray(255, dtype)).astype(dtype)
    return lambda: _plain_step(params, X, y, 0.1)


def plain_epoch(x: np.ndarray, y: np.ndarray, hidden: int, dtype: str) -> Work:
    params, rng, scale = _plain_params(hidden, dtype), np.random.default_rng(1), np.asarray(
        255, dtype)

    def epoch() -> None:
        order = rng.permutation(len(y))
        for start in range(0, len(y), 128):
            rows = order[start:start + 128]
            _plain_step(params, x[rows] / scale, y[rows], 0.1)
    return epoch


def plain_inference(x: np.ndarray, hidden: int, dtype: str) -> Work:
    W1, b1, W2, b2 = _plain_params(hidden, dtype)
    scale = np.asarray(255, dtype)
    return lambda: (np.maximum((x / scale) @ W1 + b1, 0) @ W2 + b2).argmax(axis=1)


# --- the floor of a mini-batch epoch ----------------------------------------------------------

def floor_epoch(x: np.ndarray, y: np.ndarray, hidden: int, dtype: str) -> Work:
    rng = np.random.default_rng(0)
    X = (x / np.asarray(255, dtype)).astype(dtype)
    W1 = rng.standard_normal((784, hidden)).astype(dtype)
    dZ1 = rng.standard_normal((128, hidden)).astype(dtype)
    Z1, dW1 = np.empty((128, hidden), dtype), np.empty((784, hidden), dtype)

    def epoch() -> None:
        for start in range(0, len(y), 128):
            A0 = X[start:start + 128]
            np.matmul(A0, W1, out=Z1[:len(A0)])
            np.matmul(A0.T, dZ1[:len(A0)], out=dW1)
    return epoch


# --- PyTorch eager on the CPU (optional) -----------------------------------------------------

def _torch_model(hidden: int, dtype: str):
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(784, hidden), torch.nn.ReLU(),
                              torch.nn.Linear(hidden, 10)).to(getattr(torch, dtype))
    return torch, net, torch.optim.SGD(net.parameters(), lr=0.1)


def _torch_step(torch, net, opt, X, y) -> None:
    opt.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(net(X), y).backward()
    opt.step()


def torch_step(x: np.ndarray, y: np.ndarray, dtype: str) -> Work:
    torch, net, opt = _torch_model(10, dtype)
    X = torch.from_numpy(x).to(getattr(torch, dtype)) / 255
    Y = torch.from_numpy(y)
    return lambda: _torch_step(torch, net, opt, X, Y)


def torch_epoch(x: np.ndarray, y: np.ndarray, hidden: int, dtype: str) -> Work:
    torch, net, opt = _torch_model(hidden, dtype)
    X, Y, rng = torch.from_numpy(x), torch.from_numpy(y), np.random.default_rng(1)

    def epoch() -> None:
        order = torch.from_numpy(rng.permutation(len(y)))
        for start in range(0, len(y), 128):
            rows = order[start:start + 128]
            _torch_step(torch, net, opt, X[rows].to(getattr(torch, dtype)) / 255, Y[rows])
    return epoch


def torch_inference(x: np.ndarray, hidden: int, dtype: str) -> Work:
    torch, net, _ = _torch_model(hidden, dtype)
    X = torch.from_numpy(x)

    def predict() -> object:
        with torch.inference_mode():
            return net(X.to(getattr(torch, dtype)) / 255).argmax(dim=1).numpy()
    return predict


# --- nnscratch itself --------------------------------------------------------------------------

def nnscratch_step(backend: str) -> Callable[..., Work]:
    def prepare(x: np.ndarray, y: np.ndarray, dtype: str) -> Work:
        data = (x, y, x[:1], y[:1])
        trainer = Trainer(nnscratch.MnistData(*data, "benchmark", False), backend=backend,
                          hidden=(10,), batch_size=None, lr=0.1, dtype=dtype, init="seed")

        def step() -> None:
            trainer.run_epoch()  # one epoch of a full batch is one step
        return step
    return prepare


def nnscratch_epoch(backend: str) -> Callable[..., Work]:
    def prepare(x: np.ndarray, y: np.ndarray, hidden: int, dtype: str) -> Work:
        data = nnscratch.MnistData(x, y, x[:1], y[:1], "benchmark", False)
        trainer = Trainer(data, backend=backend, hidden=(hidden,), batch_size=128, lr=0.1,
                          dtype=dtype)

        def epoch() -> None:
            trainer.run_epoch()  # the training loop of train(), losses read back and checked
        return epoch
    return prepare


def nnscratch_inference(backend: str) -> Callable[..., Work]:
    def prepare(x: np.ndarray, hidden: int, dtype: str) -> Work:
        model = nnscratch.MLP((hidden,), backend=backend, dtype=dtype)
        return lambda: model.predict(x)
    return prepare


# --- whole runs, as a user starts them (benchmarks/test_end_to_end.py) -------------------------

def blog_run(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
             iterations: int) -> Work:
    """The posts' loop: ``iterations`` full-batch steps from the scaled images, the training
    accuracy worked out every 10th iteration (they print it), float64 as they wrote it."""
    def run() -> None:
        model, X = Blog(10, np.random.default_rng(0)), x.T / 255.0
        for i in range(iterations):
            model.step(X, y, 0.1)
            if i % 10 == 0:
                np.mean(model.predict(X) == y)
    return run


def plain_run(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
              hidden: int, epochs: int, dtype: str) -> Work:
    """``epochs`` mini-batch epochs of plain NumPy, the test accuracy after each."""
    scale = np.asarray(255, dtype)

    def run() -> None:
        params, rng = _plain_params(hidden, dtype), np.random.default_rng(1)
        W1, b1, W2, b2 = params
        for _ in range(epochs):
            order = rng.permutation(len(y))
            for start in range(0, len(y), 128):
                rows = order[start:start + 128]
                _plain_step(params, x[rows] / scale, y[rows], 0.1)
            predicted = (np.maximum((x_test / scale) @ W1 + b1, 0) @ W2 + b2).argmax(axis=1)
            np.mean(predicted == y_test)
    return run


def torch_run(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
              hidden: int, epochs: int, dtype: str) -> Work:
    """A hand-written PyTorch eager loop: ``epochs`` mini-batch epochs, the test accuracy and
    loss after each."""
    def run() -> None:
        torch, net, opt = _torch_model(hidden, dtype)
        X, Y, rng = torch.from_numpy(x), torch.from_numpy(y), np.random.default_rng(1)
        X_test, Y_test = torch.from_numpy(x_test), torch.from_numpy(y_test)
        kind = getattr(torch, dtype)
        for _ in range(epochs):
            order = torch.from_numpy(rng.permutation(len(y)))
            for start in range(0, len(y), 128):
                rows = order[start:start + 128]
                _torch_step(torch, net, opt, X[rows].to(kind) / 255, Y[rows])
            with torch.inference_mode():
                logits = net(X_test.to(kind) / 255)
                torch.nn.functional.cross_entropy(logits, Y_test)
                (logits.argmax(dim=1) == Y_test).float().mean()
    return run


def nnscratch_run(backend: str) -> Callable[..., Work]:
    """train() as a user calls it, with its default reporting (no progress bar off a
    terminal), on data already loaded."""
    def prepare(data: nnscratch.MnistData, dtype: str, **settings: object) -> Work:
        return lambda: nnscratch.train(data, backend=backend, dtype=dtype, progress=False,
                                       **settings)
    return prepare
