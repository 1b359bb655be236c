"""Hyperparameter search: trials train, report and are listed; bad spaces fail clearly."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

pytest.importorskip("optuna")
pytest.importorskip("accelerate")

from kanconvs.train import ConfigError
from kanconvs.train.tune import load_space, tune


def test_two_trials_train_and_the_best_is_the_best(tmp_path: Path) -> None:
    space = {"optim.lr": {"type": "float", "low": 1e-3, "high": 3e-2, "log": True},
             "model.kwargs.degree": {"type": "categorical", "choices": [2, 3]}}  # fmt: skip
    overrides = ["epochs=1", "trackers=[]", "checkpoint.every_steps=null", f"output_dir={tmp_path}"]
    study = tune("smoke", space, trials=2, pruner="none", overrides=overrides)
    values = [t.value for t in study.trials]
    assert len(values) == 2 and study.best_value == max(values)
    assert all(0.0 <= v <= 1.0 for v in values)
    rows = list(csv.DictReader((tmp_path / "trials.csv").open()))
    assert [r["state"] for r in rows] == ["COMPLETE", "COMPLETE"]
    assert {r["model.kwargs.degree"] for r in rows} <= {"2", "3"}
    assert (tmp_path / "trial-000" / "config.yaml").is_file() and (tmp_path / "trial-001" / "best").is_dir()


def test_bad_search_spaces_are_refused() -> None:
    with pytest.raises(ConfigError, match="needs type: float, int or categorical"):
        load_space({"optim.lr": {"low": 1, "high": 2}})
    with pytest.raises(ConfigError, match=r"is missing \['choices'\]"):
        load_space({"model.kwargs.degree": {"type": "categorical"}})
    with pytest.raises(ConfigError, match=r"unknown key 'optim\.learning_rate'"):
        load_space({"optim.learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2}})
