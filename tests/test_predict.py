"""Reading a user's own digits: MNIST test digits re-rendered as pictures of other sizes, colours
and offsets must be read about as well as the originals, and the command line must fail cleanly.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

PIL = pytest.importorskip("PIL", reason="predicting from images needs Pillow (nnscratch[images])")
from PIL import Image  # noqa: E402

import nnscratch  # noqa: E402
from nnscratch.errors import DataError  # noqa: E402
from nnscratch.imageprep import prepare_digit, read_digit  # noqa: E402

N_DIGITS = 200
PREDICTION = re.compile(r"^(?P<path>.+): (?P<digit>\d)  \((?P<top>.+)\)$")


@pytest.fixture(scope="module")
def model_file(full_mnist, tmp_path_factory) -> Path:
    """A 784-128-10 model trained on the full MNIST, as a user would train it."""
    result = nnscratch.train(full_mnist, hidden=(128,), epochs=3, lr=0.5, progress=False)
    return result.save(tmp_path_factory.mktemp("model") / "model.npz")


@pytest.fixture(scope="module")
def model(model_file):
    return nnscratch.load_model(model_file)


@pytest.fixture(scope="module")
def chosen(full_mnist) -> tuple[np.ndarray, np.ndarray]:
    """200 test digits, a seeded choice, as (200, 28, 28) images and their labels."""
    index = np.random.default_rng(2024).choice(len(full_mnist.y_test), N_DIGITS, replace=False)
    return full_mnist.x_test[index].reshape(-1, 28, 28), full_mnist.y_test[index]


def render(digit: np.ndarray, rng: np.random.Generator, path: Path) -> Path:
    """``digit`` as a photo-like picture: dark ink of some colour on a light background of
    another, scaled up to 45-90% of a 60-200 px canvas at a random offset. Every fifth is a
    JPEG, every seventh a PNG with a transparent background."""
    width, height = (int(side) for side in rng.integers(60, 201, 2))
    tile = int(round(min(width, height) * rng.uniform(0.45, 0.9)))
    scaled = Image.fromarray(digit).resize((tile, tile), Image.Resampling.BICUBIC)
    alpha = np.zeros((height, width), dtype=np.float32)
    top, left = rng.integers(0, height - tile + 1), rng.integers(0, width - tile + 1)
    alpha[top:top + tile, left:left + tile] = np.clip(np.asarray(scaled) / 255, 0, 1)
    paper = rng.integers(170, 256, 3).astype(np.float32)
    ink = rng.integers(0, 90, 3).astype(np.float32)
    if path.suffix == ".png" and rng.random() < 1 / 7:
        rgba = np.dstack([np.broadcast_to(ink, (height, width, 3)), 255 * alpha])
        Image.fromarray(np.rint(rgba).astype(np.uint8), "RGBA").save(path)
        return path
    picture = paper * (1 - alpha[..., None]) + ink * alpha[..., None]
    Image.fromarray(np.rint(picture).astype(np.uint8)).save(path, quality=85)
    return path


@pytest.fixture(scope="module")
def rendered(chosen, tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(7)
    return [render(digit, rng, folder / f"{i:03d}.{'jpg' if i % 5 == 0 else 'png'}")
            for i, digit in enumerate(chosen[0])]


def test_rendered_digits_are_read_about_as_well_as_the_originals(model, chosen, rendered):
    images, labels = chosen
    on_originals = float(np.mean(model.predict(images) == labels))
    prepared = np.stack([read_digit(path) for path in rendered])
    on_rendered = float(np.mean(model.predict(prepared) == labels))
    print(f"accuracy on {N_DIGITS} originals {on_originals:.1%}, re-rendered {on_rendered:.1%}")
    assert on_originals > 0.93
    assert abs(on_rendered - on_originals) <= 0.03


def test_prepared_originals_stay_nearly_the_same(model, chosen):
    """MNIST digits are already prepared: preparing them again changes them very little."""
    images, _ = chosen
    again = np.stack([prepare_digit(image) for image in images])
    assert again.dtype == np.uint8 and again.shape == (N_DIGITS, 28, 28)
    assert np.abs(again.astype(int) - images).mean() < 6  # of 255 gray levels
    assert np.mean(model.predict(again) == model.predict(images)) >= 0.98


def run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nnscratch", *args], env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_command_agrees_with_the_library(model, model_file, rendered, tmp_path):
    some = rendered[:6]
    proc = run(["predict", str(model_file), *map(str, some), "--show-input",
                str(tmp_path / "seen.png")])
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    matches = [PREDICTION.match(line) for line in lines[:len(some)]]
    assert all(matches), lines
    expected = model.predict(np.stack([read_digit(path) for path in some]))
    assert [int(m["digit"]) for m in matches] == expected.tolist()
    assert [m["path"] for m in matches] == list(map(str, some))
    for m in matches:  # the top three, likeliest first, the first being the digit printed
        top = [(int(d), float(p)) for d, p in re.findall(r"(\d): ([\d.]+)%", m["top"])]
        assert len(top) == 3 and top[0][0] == int(m["digit"])
        assert top == sorted(top, key=lambda pair: -pair[1])
    for i, path in enumerate(some, 1):
        seen = Image.open(tmp_path / f"seen-{i}.png")
        assert seen.size == (28, 28) and seen.mode == "L"
        assert np.array_equal(np.asarray(seen), read_digit(path))


def test_show_input_for_one_image(model_file, rendered, tmp_path):
    target = tmp_path / "seen.png"
    proc = run(["predict", str(model_file), str(rendered[1]), "--show-input", str(target),
                "--top", "1"])
    assert proc.returncode == 0, proc.stderr
    assert re.fullmatch(r".+: \d  \(\d: [\d.]+%\)", proc.stdout.splitlines()[0])
    assert np.array_equal(np.asarray(Image.open(target)), read_digit(rendered[1]))


# --- what preparing does -------------------------------------------------------------------------


def bar(height: int = 60, width: int = 30, canvas: tuple[int, int] = (100, 120),
        at: tuple[int, int] = (10, 20), light: bool = True) -> np.ndarray:
    picture = np.full(canvas, 230.0 if light else 10.0)
    picture[at[0]:at[0] + height, at[1]:at[1] + width] = 20.0 if light else 240.0
    return picture


def test_a_light_background_is_inverted_and_the_ink_fitted_into_20x20():
    digit = prepare_digit(bar())
    assert digit.dtype == np.uint8 and digit.shape == (28, 28)
    rows, cols = np.nonzero(digit)
    assert (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) == (20, 10)  # 2:1 kept
    assert digit.max() == 255 and digit[0, 0] == 0
    mass = digit.astype(float) / digit.sum()
    centre = ((mass.sum(1) * np.arange(28)).sum(), (mass.sum(0) * np.arange(28)).sum())
    assert np.allclose(centre, (14, 14), atol=0.5)


def test_colour_position_and_scale_do_not_matter():
    reference = prepare_digit(bar())
    assert np.array_equal(prepare_digit(bar(light=False)), reference)
    assert np.array_equal(prepare_digit(bar(at=(35, 80))), reference)
    bigger = prepare_digit(bar(height=180, width=90, canvas=(300, 400)))
    assert np.abs(bigger.astype(int) - reference).max() <= 2


@pytest.mark.parametrize("picture", [np.full((50, 50), 200.0),
                                     np.random.default_rng(0).normal(128, 10, (80, 80))],
                         ids=["blank", "noise"])
def test_a_picture_without_a_digit(picture):
    with pytest.raises(DataError, match="shows no digit"):
        prepare_digit(picture, name="empty.png")


# --- mistakes on the command line ----------------------------------------------------------------


def assert_user_error(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_a_file_that_is_not_an_image(model_file, tmp_path):
    fake = tmp_path / "digit.png"
    fake.write_text("not a picture")
    assert_user_error(run(["predict", str(model_file), str(fake)]), str(fake),
                      "not an image")


def test_a_truncated_image(model_file, rendered, tmp_path):
    cut = tmp_path / "cut.png"
    cut.write_bytes(rendered[1].read_bytes()[:200])
    assert_user_error(run(["predict", str(model_file), str(cut)]), str(cut))


def test_a_missing_image_and_a_missing_model(model_file, rendered, tmp_path):
    missing = tmp_path / "nowhere.png"
    assert_user_error(run(["predict", str(model_file), str(missing)]), str(missing),
                      "does not exist")
    assert_user_error(run(["predict", str(tmp_path / "m.npz"), str(rendered[1])]),
                      str(tmp_path / "m.npz"))


def test_an_unknown_show_input_format(model_file, rendered, tmp_path):
    target = tmp_path / "seen.unknown"
    assert_user_error(run(["predict", str(model_file), str(rendered[1]), "--show-input",
                           str(target)]), str(target), ".png")
    assert not target.exists()


def test_without_pillow_predict_says_how_to_install_it(model_file, rendered, tmp_path,
                                                       clean_env):
    blocker = tmp_path / "no-pillow" / "PIL"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('Pillow is not installed')\n")
    env = {**clean_env, "PYTHONPATH": str(blocker.parent)}
    assert_user_error(run(["predict", str(model_file), str(rendered[1])], env),
                      "Pillow", "pip install 'nnscratch[images]'")


# --- models the pictures do not suit, and models with huge weights --------------------------------


def _digit_picture(path: Path) -> Path:
    picture = np.full((40, 30), 255, np.uint8)
    picture[8:32, 12:17] = 0  # a dark stroke on white: a one
    Image.fromarray(picture).save(path)
    return path


@pytest.mark.parametrize("inputs, words", [
    (None, "reads rows of 100 pixels, not 28x28 pictures of digits"),
    ({"scaling": "standardize", "mean": [0.0] * 100, "scale": [1.0] * 100},
     "reads rows of 100 features, not 28x28 pictures of digits"),
])
def test_a_model_of_other_rows_is_refused_for_pictures(tmp_path, inputs, words):
    model = nnscratch.MLP((4,), n_inputs=100, seed=0)
    model.inputs = inputs
    path = model.save(tmp_path / "rows.npz")
    assert_user_error(run(["predict", str(path), str(_digit_picture(tmp_path / "one.png"))]),
                      str(path), words)


def test_a_model_whose_weights_overflow_float32_prints_percentages(tmp_path, clean_env):
    params = nnscratch.MLP((16,), seed=0).params()
    params["W1"] *= 1e30
    params["W2"] *= 1e30  # finite float32 weights whose float32 products overflow
    path = nnscratch.MLP.from_params(params).save(tmp_path / "huge.npz")
    proc = run(["predict", str(path), str(_digit_picture(tmp_path / "one.png")), "--top", "10"])
    assert proc.returncode == 0, proc.stderr
    assert "nan" not in proc.stdout and proc.stderr == "", proc.stdout + proc.stderr
    shares = [float(p) for p in re.findall(r": ([\d.]+)%", proc.stdout)]
    assert len(shares) == 10 and sum(shares) == pytest.approx(100, abs=0.1)
    proc = run(["evaluate", str(path)], clean_env)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert re.search(r"test accuracy: [\d.]+% \(loss [\d.]+e\+\d+\) on 2,000 images",
                     proc.stdout), proc.stdout
