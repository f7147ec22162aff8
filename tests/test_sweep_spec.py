"""A sweep's spec (issue 15, its first part): a TOML file read, checked and expanded into its
trials before anything runs."""

from __future__ import annotations

import os

import pytest

from nnscratch import ConfigError, TrainSettings
from nnscratch.sweep_spec import parse_spec, read_spec

SPEC = """
seeds = [0, 1]

[data]
dataset = "mnist"

[fixed]
epochs = 3
batch_size = 64

[grid]
hidden = [64, [128, 32]]
lr = [0.1, 0.3, 0.5]
"""

RANDOM = """
search = "random"

[fixed]
optimizer = "adam"

[random]
trials = 5
seed = 7
lr = { log_uniform = [1e-4, 1e-2] }
batch_size = { choice = [32, 64, 128] }
weight_decay = { uniform = [0.0, 0.001] }
epochs = { int_uniform = [2, 6] }
"""


def write(tmp_path, text, name="spec.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_grid_is_every_combination_with_every_seed(tmp_path):
    spec = read_spec(write(tmp_path, SPEC))
    assert spec.search == "grid" and spec.data == {"dataset": "mnist"}
    assert len(spec.trials) == 2 * 3 * 2
    combos = [(t.settings.hidden, t.settings.lr, t.settings.seed) for t in spec.trials]
    assert combos == [(h, lr, seed) for h in ((64,), (128, 32)) for lr in (0.1, 0.3, 0.5)
                      for seed in (0, 1)]
    assert all(t.settings.epochs == 3 and t.settings.batch_size == 64 for t in spec.trials)
    assert [t.name[:3] for t in spec.trials] == [f"{i:03d}" for i in range(12)]
    assert len({t.name[4:] for t in spec.trials}) == 12  # the digests tell trials apart


def test_the_same_spec_gives_the_same_trials(tmp_path):
    first, again = (read_spec(write(tmp_path, RANDOM, f"{i}.toml")) for i in range(2))
    assert first.trials == again.trials
    other = read_spec(write(tmp_path, RANDOM.replace("seed = 7", "seed = 8")))
    assert [t.settings for t in other.trials] != [t.settings for t in first.trials]


def test_random_draws_stay_within_their_distributions(tmp_path):
    spec = read_spec(write(tmp_path, RANDOM.replace("trials = 5", "trials = 200")))
    assert spec.search == "random" and len(spec.trials) == 200
    s = [t.settings for t in spec.trials]
    assert all(1e-4 <= x.lr <= 1e-2 for x in s)
    assert {x.batch_size for x in s} == {32, 64, 128}
    assert all(0 <= x.weight_decay <= 1e-3 for x in s)
    assert {x.epochs for x in s} == {2, 3, 4, 5, 6}
    assert all(x.optimizer == "adam" for x in s)


def test_the_table_shows_what_varies(tmp_path):
    lines = read_spec(write(tmp_path, SPEC)).table().splitlines()
    assert lines[0].split() == ["trial", "hidden", "lr", "seed"]
    assert lines[1].split()[1:] == ["64", "0.1", "0"] and lines[-1].split()[1:] == [
        "128,32", "0.5", "1"]


def test_settings_left_out_take_their_defaults():
    (trial,) = parse_spec({}).trials
    assert trial.settings == TrainSettings()


@pytest.mark.parametrize("text,words", [
    ("gird = 1", ["unknown key 'gird'"]),
    ("[grid]\nlrr = [0.1]", ["grid.lrr is not a setting"]),
    ("[fixed]\nlearning_rate = 0.1", ["fixed.learning_rate is not a setting"]),
    ("[grid]\nlr = [0.1, -1]", ["lr = -1", "lr must be a positive"]),
    ("[grid]\nlr = 0.1", ["grid.lr must be a list"]),
    ("[grid]\nlr = []", ["grid.lr must be a list"]),
    ("[fixed]\noptimizer = \"adam\"\nmomentum = 0.9", ["impossible", "momentum"]),
    ("search = \"exhaustive\"", ["search must be one of grid, random"]),
    ("search = \"random\"", ["needs a [random] table"]),
    ("[random]\ntrials = 0\nlr = { uniform = [0.1, 0.2] }", ["random.trials"]),
    ("[random]\ntrials = 2\nlr = { normal = [0, 1] }", ["unknown distribution 'normal'"]),
    ("[random]\ntrials = 2\nlr = { uniform = [0.5, 0.1] }", ["low < high"]),
    ("[random]\ntrials = 2\nlr = { log_uniform = [0, 0.1] }", ["above 0"]),
    ("[random]\ntrials = 2\nepochs = { int_uniform = [1.5, 3] }", ["integer bounds"]),
    ("[random]\ntrials = 2\nlr = 0.1", ["random.lr must be one distribution"]),
    ("[random]\ntrials = 2\nlrr = { choice = [1] }", ["random.lrr is not a setting"]),
    ("seeds = [1, 1]", ["seeds lists a seed twice"]),
    ("[grid]\nlr = [0.1]\nseeds = [1, 2]", ["grid.seeds", "top level, before the first"]),
    ("seeds = [\"a\"]", ["seeds must be a list of integers"]),
    ("[data]\npath = 3", ["data.path must be a string"]),
    ("[data]\nfolder = \"x\"", ["unknown key data.'folder'"]),
])
def test_a_mistake_is_one_sentence_naming_the_key(tmp_path, text, words):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        read_spec(path)
    message = str(error.value)
    assert "\n" not in message and message.startswith(str(path)), message
    for word in words:
        assert word in message, message


@pytest.mark.parametrize("make,words", [
    (lambda p: None, ["does not exist"]),
    (lambda p: p.mkdir(), ["is a folder"]),
    (lambda p: os.mkfifo(p), ["named pipe"]),
    (lambda p: p.write_bytes(b"\xff\xfe[grid]"), ["not UTF-8"]),
    (lambda p: p.write_text("[grid\nlr = [0.1]"), ["not valid TOML", "line 1"]),
])
def test_a_spec_that_is_no_toml_file(tmp_path, make, words):
    path = tmp_path / "spec.toml"
    make(path)
    with pytest.raises(ConfigError) as error:
        read_spec(path)
    for word in words:
        assert word in str(error.value), error.value
