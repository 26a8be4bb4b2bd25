"""The search space as data: specs, the default width x dropout space, trial names, and what a trial replaces."""

import pytest

from seqlab.config import ModelConfig, SearchConfig, TrainConfig
from seqlab.errors import SeqlabError
from seqlab.tune.search import apply, check_searchable, targets
from seqlab.tune.space import Dim, column, is_grid, parse_space, space_of, to_tune, trial_name


def test_specs_parse_with_bounds_included():
    dims = parse_space({"hidden": "lograndint[32, 512]", "dropout": "uniform[0, 0.6]", "lr": "loguniform[3e-4,1e-2]",
                        "batch_size": "choice[16, 32, 64]", "pooling": "choice[max, last]", "embed_dim": [8, 16]})
    assert dims["hidden"] == Dim("lograndint", (32, 512)) and dims["lr"] == Dim("loguniform", (3e-4, 1e-2))
    assert dims["batch_size"].values == (16, 32, 64) and dims["pooling"].values == ("max", "last")
    assert dims["embed_dim"] == Dim("choice", (8, 16))  # a YAML list lists values
    tune = to_tune(dims)
    assert (tune["hidden"].lower, tune["hidden"].upper) == (32, 513)  # Tune's upper bound is exclusive
    assert tune["batch_size"].categories == [16, 32, 64]
    assert not is_grid(dims) and is_grid(parse_space({"hidden": "grid[8, 16]", "dropout": "grid[0, 0.5]"}))


@pytest.mark.parametrize("space,message", [
    ({"hidden": "wide"}, "search space hidden: 'wide' is not a spec"),
    ({"hidden": "lograndint[64, 32]"}, "low 64 is above high 32"),
    ({"hidden": "randint[1.5, 4]"}, "randint needs whole numbers"),
    ({"lr": "loguniform[0, 1]"}, "needs a low bound above 0"),
    ({"lr": "uniform[1]"}, "uniform needs two numbers"),
    ({"hidden": "grid[8, 16]", "dropout": "uniform[0, 0.5]"}, "give every field as grid[...]"),
    ({"hidden": "choice[]"}, "needs at least one value"),
])
def test_bad_specs_name_the_field(space, message):
    with pytest.raises(SeqlabError, match=message.replace("[", r"\[")):
        SearchConfig(space=space)


def test_the_default_space_is_width_and_dropout_from_the_flags():
    assert space_of(SearchConfig(hidden_min=16, hidden_max=64)) == {
        "hidden": Dim("lograndint", (16, 64)), "dropout": Dim("uniform", (0.0, 0.6))}
    assert list(space_of(SearchConfig(search_lr=True))) == ["hidden", "dropout", "lr"]
    assert space_of(SearchConfig(hidden_values="16,64", dropout_values="0,0.5", grid=True)) == {
        "hidden": Dim("grid", (16, 64)), "dropout": Dim("grid", (0.0, 0.5))}
    assert space_of(SearchConfig(space={"lr": "loguniform[1e-4, 1e-2]"})) == {"lr": Dim("loguniform", (1e-4, 1e-2))}


def test_trial_names_and_table_columns():
    assert trial_name({"hidden": 128, "dropout": 0.3}) == "h128-do0.3000"
    assert trial_name({"hidden": 40, "dropout": 0.25, "lr": 0.00291}) == "h040-do0.2500-lr2.9e-03"
    assert trial_name({"embed_dim": 16, "weight_decay": 0.012345, "pooling": "last"}) == \
        "embed_dim16-weight_decay0.01235-poolinglast"
    assert column(Dim("uniform", (0, 1)), 0.123456) == 0.1235 and column(Dim("lograndint", (8, 64)), 17) == 17
    assert column(Dim("loguniform", (1e-4, 1e-2)), 0.000123456) == 0.000123456


def test_a_trial_replaces_what_its_space_names_and_keeps_the_rest():
    model = ModelConfig(model="lstm", options={"hidden": 64, "embed_dim": 32, "pooling": "max"})
    train = TrainConfig(lr=0.002, batch_size=64, epochs=3)
    mc, tc = apply({"hidden": 17.0, "pooling": "last", "lr": 0.01, "batch_size": 16}, model, train)
    assert mc.options == {"hidden": 17, "embed_dim": 32, "pooling": "last"} and type(mc.options["hidden"]) is int
    assert (tc.lr, tc.batch_size, tc.epochs) == (0.01, 16, 3)
    assert model.options["hidden"] == 64 and train.lr == 0.002  # the run's own settings are untouched
    assert targets({"hidden": None, "lr": None}, "lstm") == {"hidden": "model", "lr": "train"}


def test_a_space_must_fit_the_model():
    with pytest.raises(SeqlabError, match="model 'minilm' has no LSTM width to search"):
        check_searchable(SearchConfig(), "minilm")
    assert check_searchable(SearchConfig(space={"lr": "loguniform[1e-5, 1e-4]"}), "minilm") == {
        "lr": Dim("loguniform", (1e-5, 1e-4))}  # MiniLM is searchable over its train fields
    with pytest.raises(SeqlabError, match="'latent' is neither an option of model 'cnn'"):
        check_searchable(SearchConfig(space={"latent": "randint[4, 8]"}), "cnn")


def test_the_study_is_named_after_what_the_search_is(tmp_path):
    from seqlab.config import DataConfig
    from seqlab.tune.search import search_settings

    train = TrainConfig(storage_path=str(tmp_path))
    base = search_settings(DataConfig(dataset="cfpb"), ModelConfig(), train, SearchConfig(search_name="s"))
    assert base["study_name"].startswith("s-") and len(base["study_name"]) == len("s-") + 8
    same = search_settings(DataConfig(dataset="cfpb"), ModelConfig(), dataclass_replace(train, epochs=99),
                           SearchConfig(search_name="s", num_samples=9))
    assert same["study_name"] == base["study_name"]  # trials of the same search, however many epochs or trials
    for other in (search_settings(DataConfig(dataset="sentences2"), ModelConfig(), train, SearchConfig(search_name="s")),
                  search_settings(DataConfig(dataset="cfpb"), ModelConfig(model="cnn", options={}), train,
                                  SearchConfig(search_name="s", space={"filters": "choice[8, 16]"})),
                  search_settings(DataConfig(dataset="cfpb"), ModelConfig(), train,
                                  SearchConfig(search_name="s", hidden_max=64))):
        assert other["study_name"] != base["study_name"]


def dataclass_replace(obj, **kw):
    import dataclasses

    return dataclasses.replace(obj, **kw)


def test_a_search_name_reused_with_other_settings_is_refused_before_ray_starts(tmp_path):
    import json
    import subprocess
    import sys

    folder = tmp_path / "runs" / "reused"
    folder.mkdir(parents=True)
    (folder / "seqlab_search.json").write_text(json.dumps({"study_name": "reused-00000000", "data": {
        "dataset": "sentences2"}}))
    done = subprocess.run([sys.executable, "-m", "seqlab.cli", "tune", "--dataset", "cfpb", "--search-name", "reused",
                           "--storage-path", str(tmp_path / "runs")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"seqlab: error: search {folder} was started with other settings (data.dataset was 'sentences2', now "
        f"'cfpb'); keep them to resume it, or choose a new --search-name"]  # one line: Ray never started
