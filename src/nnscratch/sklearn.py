"""A scikit-learn estimator: :class:`MLPClassifier`, nnscratch's network behind scikit-learn's
conventions, so that it works in a ``Pipeline``, in ``GridSearchCV`` and wherever scikit-learn's
own ``MLPClassifier`` does, on any nnscratch backend.

scikit-learn is an optional extra (``pip install "nnscratch[sklearn]"``), imported by this
module only: importing :mod:`nnscratch` does not load it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets, unique_labels
from sklearn.utils.validation import check_is_fitted, validate_data

from .data import MnistData
from .errors import TrainingDivergedError
from .inputs import fit_scaling, scaled_features
from .settings import TrainSettings
from .trainer import LossDiverged, Trainer

__all__ = ["MLPClassifier"]


class MLPClassifier(ClassifierMixin, BaseEstimator):
    """A multi-layer perceptron classifier trained by nnscratch: ReLU hidden layers, a softmax
    output and the cross-entropy loss, trained by mini-batch SGD or Adam.

    ``hidden_layer_sizes``, ``solver`` (``"adam"`` or ``"sgd"``), ``learning_rate_init``,
    ``batch_size`` (capped at the number of rows), ``max_iter`` (epochs), ``momentum`` and
    ``nesterovs_momentum`` (SGD only) and ``random_state`` mean what they mean for
    scikit-learn's ``MLPClassifier``. ``weight_decay`` is nnscratch's L2 term (added to the
    gradient of the mean loss: ``weight_decay * W``). ``scaling``: ``"standardize"`` (each
    feature by the training rows' mean and spread, the default), ``"pixels"`` (0-255 divided by
    255) or ``"none"``. ``init``: the initial weights, by default ``"xavier"`` (Glorot's
    uniform scheme, which scikit-learn's ``MLPClassifier`` uses), or ``"he"`` or ``"seed"`` as
    for :func:`nnscratch.train`. ``backend`` is an nnscratch backend name (``"numpy"``,
    ``"numba"``...) and ``dtype`` the parameters' type.

    After :meth:`fit`: ``classes_``, ``n_features_in_``, ``loss_curve_`` (the mean training
    loss of each epoch), ``n_iter_`` and ``model_`` (the :class:`nnscratch.MLP`).
    """

    def __init__(self, hidden_layer_sizes: Sequence[int] = (100,), *, solver: str = "adam",
                 learning_rate_init: float = 0.001, batch_size: int = 200, max_iter: int = 200,
                 momentum: float = 0.9, nesterovs_momentum: bool = True,
                 weight_decay: float = 0.0, scaling: str = "standardize",
                 init: str = "xavier", random_state: int | None = None,
                 backend: str | None = None, dtype: str = "float64") -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.solver = solver
        self.learning_rate_init = learning_rate_init
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.weight_decay = weight_decay
        self.scaling = scaling
        self.init = init
        self.random_state = random_state
        self.backend = backend
        self.dtype = dtype

    # --- fitting ----------------------------------------------------------------------------

    def fit(self, X: Any, y: Any) -> MLPClassifier:
        """Train a new network on ``X`` (n, d) and labels ``y`` for ``max_iter`` epochs."""
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_ = unique_labels(y)
        self._start(X, np.searchsorted(self.classes_, y))
        return self._train(self.max_iter)

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> MLPClassifier:
        """One epoch on ``X`` and ``y``; the first call needs ``classes``, every label there
        will ever be (scikit-learn's convention), and fits the input scaling on its rows."""
        first = not hasattr(self, "classes_")
        X, y = validate_data(self, X, y, dtype=np.float64, reset=first)
        check_classification_targets(y)
        if first:
            if classes is None:
                raise ValueError("the first call of partial_fit needs classes: every label "
                                 "the data will ever have")
            self.classes_ = unique_labels(classes)
        unknown = np.setdiff1d(unique_labels(y), self.classes_)
        if len(unknown):
            raise ValueError(f"y has labels not in classes: {unknown[:5].tolist()}")
        codes = np.searchsorted(self.classes_, y)
        if first:
            self._start(X, codes)
        else:
            self._trainer.place_data(self._data(X, codes))
        return self._train(1)

    def _start(self, X: np.ndarray, codes: np.ndarray) -> None:
        if len(self.classes_) < 2:
            raise ValueError(f"the labels have only one class ({self.classes_[0]!r}); "
                             "classification needs at least two")
        if self.scaling == "pixels":  # 0-255 to [0, 1]: a standardization by 0 and 255
            self._inputs = {"scaling": "standardize", "mean": [0.0] * X.shape[1],
                            "scale": [255.0] * X.shape[1]}
        else:
            self._inputs = fit_scaling(X, self.scaling)
        self._trainer = Trainer(self._data(X, codes), self._settings(len(X)))
        self.model_ = self._trainer.model
        self.model_.inputs = self._inputs
        self.loss_curve_: list[float] = []
        self.n_iter_ = 0

    def _settings(self, n_rows: int) -> TrainSettings:
        sgd = self.solver == "sgd"
        seed = (self.random_state if self.random_state is not None
                else int(np.random.SeedSequence().entropy % 2**32))  # None: a fresh draw
        return TrainSettings(
            hidden=tuple(self.hidden_layer_sizes), epochs=max(1, self.max_iter),
            batch_size=min(self.batch_size, n_rows), lr=self.learning_rate_init,
            optimizer=self.solver, momentum=self.momentum if sgd else 0.0,
            nesterov=bool(sgd and self.momentum and self.nesterovs_momentum),
            weight_decay=self.weight_decay, init=self.init, seed=seed, dtype=self.dtype,
            backend=self.backend)

    def _data(self, X: np.ndarray, codes: np.ndarray) -> MnistData:
        # The classes are codes into classes_, so that every one is an output even when a
        # partial_fit batch lacks some; its test set is unused (the estimator has none).
        prepared = scaled_features(X, self._inputs, X.shape[1])
        last = np.array([len(self.classes_) - 1])
        return MnistData(prepared, codes, prepared[:1], last, "arrays given to fit", False)

    def _train(self, epochs: int) -> MLPClassifier:
        for _ in range(epochs):
            try:
                progress = self._trainer.run_epoch()
            except LossDiverged as exc:
                raise TrainingDivergedError(
                    f"training diverged at epoch {self.n_iter_ + 1}, step {exc.step}: the "
                    f"loss became {exc.value:.3g}; learning_rate_init "
                    f"({self.learning_rate_init:g}) is probably too large") from None
            self.loss_curve_.append(progress.loss_sum / progress.seen)
            self.n_iter_ += 1
        return self

    # --- predicting -------------------------------------------------------------------------

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (n, len(classes_)), float64, columns in the order of classes_."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return np.asarray(self.model_.predict_proba(X), dtype=np.float64)

    def predict(self, X: Any) -> np.ndarray:
        """The likeliest class of each row, from classes_."""
        probabilities = self.predict_proba(X)  # first: it checks that the model is fitted
        return self.classes_[np.argmax(probabilities, axis=1)]
