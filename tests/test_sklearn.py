"""nnscratch.sklearn.MLPClassifier: scikit-learn's own estimator checks, and the estimator in a
Pipeline and GridSearchCV, with partial_fit, on every backend, against scikit-learn's
MLPClassifier on a data set scikit-learn ships."""

from __future__ import annotations

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn", reason="scikit-learn is the optional extra "
                                                "nnscratch[sklearn]")
from sklearn.datasets import load_iris  # noqa: E402
from sklearn.model_selection import GridSearchCV, train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from nnscratch.sklearn import MLPClassifier  # noqa: E402
from nnscratch.testing import backend_or_skip  # noqa: E402


@parametrize_with_checks([MLPClassifier(random_state=0)])
def test_scikit_learns_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def iris():
    x, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    return train_test_split(x, names, test_size=0.25, stratify=y, random_state=0)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_it_learns_iris_with_string_labels_on_each_backend(iris, backend):
    backend_or_skip(backend)
    x_train, x_test, y_train, y_test = iris
    model = MLPClassifier(hidden_layer_sizes=(32,), max_iter=300, learning_rate_init=0.01,
                          random_state=0, backend=backend).fit(x_train, y_train)
    assert list(model.classes_) == ["setosa", "versicolor", "virginica"]
    assert model.score(x_test, y_test) >= 0.9
    assert len(model.loss_curve_) == 300 == model.n_iter_
    assert model.loss_curve_[-1] < model.loss_curve_[0] / 5
    assert model.model_.backend.name == backend


def test_the_same_seed_gives_the_same_model_and_numba_agrees_with_numpy(iris):
    backend_or_skip("numba")
    x_train, x_test, y_train, _ = iris
    fits = [MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=3, backend=b)
            .fit(x_train, y_train) for b in ("numpy", "numpy", "numba")]
    np.testing.assert_array_equal(fits[0].predict_proba(x_test), fits[1].predict_proba(x_test))
    np.testing.assert_allclose(fits[2].predict_proba(x_test), fits[0].predict_proba(x_test),
                               rtol=1e-10, atol=1e-12)


def test_in_a_pipeline_and_a_grid_search(iris):
    x_train, x_test, y_train, y_test = iris
    pipeline = make_pipeline(FunctionTransformer(np.log1p),
                             MLPClassifier(max_iter=100, random_state=0))
    search = GridSearchCV(pipeline, {"mlpclassifier__learning_rate_init": [0.003, 0.01],
                                     "mlpclassifier__hidden_layer_sizes": [(8,), (32,)]}, cv=3)
    search.fit(x_train, y_train)
    assert set(search.best_params_) == {"mlpclassifier__learning_rate_init",
                                        "mlpclassifier__hidden_layer_sizes"}
    assert search.score(x_test, y_test) >= 0.85


def test_partial_fit_trains_one_epoch_a_call(iris):
    x_train, x_test, y_train, y_test = iris
    model = MLPClassifier(hidden_layer_sizes=(32,), learning_rate_init=0.01, random_state=0)
    with pytest.raises(ValueError, match="needs classes"):
        model.partial_fit(x_train, y_train)
    classes = np.unique(y_train)
    for _ in range(150):
        model.partial_fit(x_train, y_train, classes=classes)
    assert model.n_iter_ == 150 and model.score(x_test, y_test) >= 0.9
    with pytest.raises(ValueError, match="not in classes"):
        model.partial_fit(x_train[:2], np.array(["setosa", "daisy"]))


def test_pixels_scaling_divides_by_255():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (40, 4)).astype(float)
    y = (x[:, 0] > 127).astype(int)
    model = MLPClassifier(hidden_layer_sizes=(4,), max_iter=1, scaling="pixels",
                          random_state=0).fit(x, y)
    assert model.model_.inputs == {"scaling": "standardize", "mean": [0.0] * 4,
                                   "scale": [255.0] * 4}
