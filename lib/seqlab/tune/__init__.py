"""Ray Tune + Optuna searches: the space as data, the study, the search, its results."""
