"""Optimisers and schedules against hand-written float64 formulas (the reference backend; every
other backend is held to the reference by the agreement suite)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nnscratch
from nnscratch import ConfigError
from nnscratch.optim import SGD, Adam, LRSchedule, make_optimizer

SHAPES = {"W1": (6, 4), "b1": (4,)}


def run_steps(optimizer, n_steps=3, seed=0):
    """Apply ``optimizer`` to float64 parameters for ``n_steps`` steps of fixed gradients;
    return the start, the gradients and the end."""
    backend = nnscratch.get_backend("numpy")
    rng = np.random.default_rng(seed)
    start = {name: rng.standard_normal(shape) for name, shape in SHAPES.items()}
    grads = [{name: rng.standard_normal(shape) for name, shape in SHAPES.items()}
             for _ in range(n_steps)]
    params = {name: backend.asarray(value) for name, value in start.items()}
    for g in grads:
        optimizer.step(backend, params, {name: backend.asarray(v) for name, v in g.items()})
    return start, grads, {name: backend.to_numpy(value) for name, value in params.items()}


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_sgd_momentum_nesterov_and_weight_decay(nesterov, weight_decay):
    lr, m = 0.1, 0.9
    start, grads, end = run_steps(SGD(lr, m, nesterov=nesterov, weight_decay=weight_decay))
    for name in SHAPES:
        p, v = start[name].copy(), np.zeros(SHAPES[name])
        decay = weight_decay if name.startswith("W") else 0.0  # biases are not decayed
        for g in grads:
            g = g[name] + decay * p
            v = m * v + g
            p = p - lr * (g + m * v if nesterov else v)
        np.testing.assert_allclose(end[name], p, rtol=1e-13, atol=1e-15, err_msg=name)


@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_adam(weight_decay):
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    start, grads, end = run_steps(Adam(lr, weight_decay=weight_decay), n_steps=4)
    for name in SHAPES:
        p, m, v = start[name].copy(), np.zeros(SHAPES[name]), np.zeros(SHAPES[name])
        decay = weight_decay if name.startswith("W") else 0.0
        for t, g in enumerate(grads, start=1):
            g = g[name] + decay * p
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
            p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
        # the interface's form divides by sqrt(1 - b2^t) instead of v: equal up to rounding,
        # and to eps * (1 - sqrt(1 - b2^t)) in the denominator (1e-8 relative at most)
        np.testing.assert_allclose(end[name], p, rtol=1e-7, err_msg=name)


def test_adam_first_step_moves_every_weight_by_lr():
    """Bias correction makes the first step lr * g / (|g| + eps): lr in the gradient's
    direction, whatever its scale."""
    start, grads, end = run_steps(Adam(0.01), n_steps=1)
    for name in SHAPES:
        g = grads[0][name]
        np.testing.assert_allclose(start[name] - end[name], 0.01 * g / (np.abs(g) + 1e-8),
                                   rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_adam_sets_subnormal_moments_to_zero_every_16th_step(dtype):
    """A weight whose gradient stays 0 keeps a subnormal moment for good (beta * m rounds back
    to m), and subnormal arithmetic is several times slower: every FLUSH_EVERY-th step they
    go to 0; normal moments are untouched."""
    from nnscratch.backend import FLUSH_EVERY

    b = nnscratch.get_backend("numpy")
    tiny = np.finfo(dtype).tiny
    stuck = np.array([tiny / 8, -tiny / 8, tiny / 2**20, tiny * 4], dtype)
    for step, flushed in ((FLUSH_EVERY - 1, False), (FLUSH_EVERY, True)):
        m, v = stuck.copy(), np.abs(stuck)
        b.adam_update(np.ones(4, dtype), np.zeros(4, dtype), m, v, 0.001, step=step)
        assert (m[:3] == 0).all() == flushed and (v[:3] == 0).all() == flushed
        assert m[3] != 0 and v[3] != 0  # normal: kept, multiplied by the betas
    least = np.finfo(dtype).smallest_subnormal
    m, v = np.full(4, least, dtype), np.full(4, least, dtype)
    b.adam_update(np.ones(4, dtype), np.zeros(4, dtype), m, v, 0.001, step=3)
    assert (m == least).all() and (v == least).all()  # beta times it rounds back to it


def test_optimizer_state_round_trips():
    backend = nnscratch.get_backend("numpy")
    adam = Adam(0.01)
    run_steps(adam, n_steps=2)
    arrays, info = adam.state(backend)
    assert sorted(arrays) == ["m.W1", "m.b1", "v.W1", "v.b1"] and info == {"steps": 2}
    copy = Adam(0.01)
    copy.load_state(backend, arrays, info)
    assert copy.steps == 2
    np.testing.assert_array_equal(copy.buffers["v"]["W1"], adam.buffers["v"]["W1"])


def test_step_schedule():
    schedule = LRSchedule(1.0, 9, "step")  # default: a drop every third of the epochs
    assert [schedule.at(e) for e in range(1, 10)] == pytest.approx(
        [1, 1, 1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01])
    schedule = LRSchedule(0.5, 10, "step", step_size=4, gamma=0.5)
    assert [schedule.at(e) for e in (1, 4, 5, 8, 9)] == pytest.approx(
        [0.5, 0.5, 0.25, 0.25, 0.125])


def test_cosine_schedule():
    schedule = LRSchedule(0.1, 4, "cosine", min_lr=0.02)
    expected = [0.02 + 0.08 * (1 + math.cos(math.pi * k / 4)) / 2 for k in range(4)]
    assert [schedule.at(e) for e in range(1, 5)] == pytest.approx(expected, rel=1e-15)
    assert schedule.at(1) == 0.1 and schedule.at(3) == pytest.approx(0.06)
    assert LRSchedule(0.3, 5).at(5) == 0.3  # no schedule: constant


@pytest.mark.parametrize("make,word", [
    (lambda: SGD(0.1, nesterov=True), "nesterov"),
    (lambda: SGD(0.1, weight_decay=-1), "weight_decay"),
    (lambda: make_optimizer("adam", 0.1, momentum=0.9), "momentum"),
    (lambda: make_optimizer("rmsprop", 0.1), "unknown optimizer"),
    (lambda: Adam(0.1, beta2=1.0), "beta2"),
    (lambda: LRSchedule(0.1, 5, "linear"), "schedule must be none, step or cosine"),
    (lambda: LRSchedule(0.1, 5, "cosine", min_lr=0.1), "lr_min"),
    (lambda: LRSchedule(0.1, 5, "step", gamma=0.0), "lr_gamma"),
    (lambda: LRSchedule(0.1, 5, "step", step_size=0), "lr_step"),
])
def test_impossible_settings_are_refused(make, word):
    with pytest.raises(ConfigError, match=word):
        make()


def test_a_backend_written_before_the_new_keywords_still_runs_sgd():
    """An sgd_update override without nesterov/weight_decay keeps working for the settings it
    knows; the keywords are passed only when they are used."""

    class OldBackend(nnscratch.Backend):
        name = "old"
        xp = np

        def sgd_update(self, param, grad, lr, *, velocity=None, momentum=0.0):
            super().sgd_update(param, grad, lr, velocity=velocity, momentum=momentum)

    old, reference = OldBackend(), nnscratch.get_backend("numpy")
    ends = []
    for backend in (old, reference):
        params = {"W1": backend.asarray(np.ones((2, 2)))}
        SGD(0.1, 0.5).step(backend, params, {"W1": backend.asarray(np.full((2, 2), 3.0))})
        ends.append(params["W1"])
    np.testing.assert_array_equal(ends[0], ends[1])
    np.testing.assert_allclose(ends[0], 1 - 0.1 * 3.0)
