"""The CUDA kernels of the CuPy backend, each a few lines of CUDA C.

``T`` is the float type (``float`` or ``double``), ``L`` the integer type of the labels: CuPy
takes them from the arrays passed, compiles one binary per combination on first use and caches it
on disk (``~/.cupy/kernel_cache``, or ``$CUPY_CACHE_DIR``). Row-wise kernels run one thread per
row: an MNIST row has 10 logits, too few to share between threads. They index rows through
pointers, so their array arguments must be C-contiguous (the backend sees to it).

Importing this module imports cupy but needs no GPU; nothing is compiled until a kernel is called.
"""

from __future__ import annotations

import cupy

# No contraction of a * b + c into one fused multiply-add: each operation is rounded on its own,
# in NumPy's order, so the elementwise kernels and the updates give NumPy's bits.
_OPTIONS = ("--fmad=false",)

_ROW_HELPERS = r"""
// The largest entry of a row; a NaN wins, as in NumPy's max.
template <typename T>
__device__ T row_max(const T* z, long long c) {
    T m = z[0];
    for (long long j = 1; j < c; ++j) {
        if (z[j] > m || z[j] != z[j]) m = z[j];
    }
    return m;
}

// The column of the largest entry of a row; the first NaN wins, as in NumPy's argmax.
template <typename T>
__device__ long long row_argmax(const T* z, long long c) {
    long long best = 0;
    for (long long j = 1; j < c && z[best] == z[best]; ++j) {
        if (z[j] > z[best] || z[j] != z[j]) best = j;
    }
    return best;
}

// p = softmax(z) with the row's maximum m taken out first (so exp cannot overflow);
// returns the sum of exp(z - m), from which the log-sum-exp loss follows.
template <typename T>
__device__ T row_softmax(const T* z, T* p, long long c, T m) {
    T total = 0;
    for (long long j = 0; j < c; ++j) {
        p[j] = exp(z[j] - m);
        total += p[j];
    }
    for (long long j = 0; j < c; ++j) p[j] /= total;
    return total;
}
"""


def _elementwise(in_params: str, out_params: str, body: str, name: str) -> cupy.ElementwiseKernel:
    return cupy.ElementwiseKernel(in_params, out_params, body, f"nnscratch_{name}",
                                  preamble=_ROW_HELPERS, options=_OPTIONS)


# uint8 pixels to floats in [0, 1]. Division (not * 1/255) is correctly rounded, as NumPy's is.
scale_pixels = _elementwise("uint8 pixel", "T x", "x = (T)pixel / (T)255", "scale_pixels")

# The same for the rows ``rows`` of ``pixels`` (n_images, d): gather and scale in one pass.
# Indices wrap around, as in cupy.take, so that no index can read outside the images.
gather_scale_pixels = _elementwise(
    "raw uint8 pixels, raw I rows, int64 n_images, int64 d", "T x",
    """long long r = rows[i / d] % n_images;
       if (r < 0) r += n_images;
       x = (T)pixels[r * d + i % d] / (T)255""",
    "gather_scale_pixels")

# z = max(z + bias, 0) in place; NaN stays NaN, as in NumPy's maximum. bias broadcasts over rows.
bias_relu = _elementwise("T bias", "T z",
                         "T s = z + bias; z = (s >= (T)0 || s != s) ? s : (T)0", "bias_relu")

# grad *= (activation > 0) in place: a multiplication, as in NumPy, so NaN * 0 stays NaN.
bias_relu_backward = _elementwise("T activation", "T grad",
                                  "grad = grad * (T)(activation > (T)0)", "bias_relu_backward")

# Softmax of each row of ``logits`` (n, c) into ``probs``: one thread per row (size=n).
softmax = _elementwise(
    "raw T logits, int64 c", "raw T probs",
    "row_softmax(&logits[i * c], &probs[i * c], c, row_max(&logits[i * c], c))",
    "softmax")

# Softmax into ``probs`` and each row's loss, log(sum exp(z - m)) - (z[label] - m). A label
# outside [0, c) gives a NaN loss instead of a read outside the row.
softmax_cross_entropy = _elementwise(
    "raw T logits, L label, int64 c", "raw T probs, T loss",
    """const T* z = &logits[i * c];
       const T m = row_max(z, c);
       const T total = row_softmax(z, &probs[i * c], c, m);
       loss = (label >= 0 && label < c) ? log(total) - (z[label] - m) : (T)nan("")""",
    "softmax_cross_entropy")

# probs = (probs - onehot(labels)) / n in place, over all n * c entries.
softmax_cross_entropy_backward = _elementwise(
    "raw L labels, int64 c, T n", "T probs",
    "probs = (probs - (T)(i % c == labels[i / c])) / n", "softmax_cross_entropy_backward")

# The column of each row's largest logit.
argmax_rows = _elementwise("raw T logits, int64 c", "int64 column",
                           "column = row_argmax(&logits[i * c], c)", "argmax_rows")

# 1 where a row's largest logit is at its label, else 0 (summed afterwards).
correct_rows = _elementwise("raw T logits, L label, int64 c", "int64 hit",
                            "hit = row_argmax(&logits[i * c], c) == label", "correct_rows")

# Sums and means accumulate in double and round once, like the Numba backend's.
sum_in_double = cupy.ReductionKernel(
    "T x", "T y", "x", "a + b", "y = (T)a", "0", "nnscratch_sum_in_double",
    reduce_type="double", options=_OPTIONS)
mean_in_double = cupy.ReductionKernel(
    "T x", "T y", "x", "a + b", "y = (T)(a / (double)(_in_ind.size() / _out_ind.size()))", "0",
    "nnscratch_mean_in_double", reduce_type="double", options=_OPTIONS)

# One SGD step in place, in the reference's order of operations (see Backend.sgd_update):
# weight decay (skipped when 0), then param -= lr * grad.
sgd = _elementwise(
    "T grad, T lr, T weight_decay", "T param",
    """T g = weight_decay != (T)0 ? grad + weight_decay * param : grad;
       param = param - g * lr""",
    "sgd")

# The same with a velocity: v = momentum * v + g; param -= lr * v, or with Nesterov
# param -= lr * (g + momentum * v).
sgd_momentum = _elementwise(
    "T grad, T lr, T momentum, T weight_decay, bool nesterov", "T param, T velocity",
    """T g = weight_decay != (T)0 ? grad + weight_decay * param : grad;
       velocity = velocity * momentum + g;
       param = param - (nesterov ? g + momentum * velocity : velocity) * lr""",
    "sgd_momentum")

# One Adam step in place (see Backend.adam_update); the bias corrections come precomputed:
# step_size = lr / (1 - beta1**step), root_correction = sqrt(1 - beta2**step).
adam = _elementwise(
    "T grad, T step_size, T beta1, T one_minus_beta1, T beta2, T one_minus_beta2, "
    "T root_correction, T eps, T weight_decay", "T param, T m, T v",
    """T g = weight_decay != (T)0 ? grad + weight_decay * param : grad;
       m = m * beta1 + one_minus_beta1 * g;
       v = v * beta2 + g * g * one_minus_beta2;
       param = param - m / (sqrt(v) / root_correction + eps) * step_size""",
    "adam")
