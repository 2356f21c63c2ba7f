"""Training step: the typed hyperparameter schema (SageMaker passes strings)."""

import pytest

from pipeline_steps.train.hyperparameters import HyperparameterError, Hyperparameters, parse_hyperparameters


def test_strings_are_parsed_to_types():
    hp = parse_hyperparameters(
        {
            "num_round": "50",
            "max_depth": "4",
            "eta": "0.3",
            "subsample": "0.8",
            "colsample_bytree": "0.9",
            "min_child_weight": "2",
            "gamma": "0.1",
            "reg_lambda": "2.5",
            "early_stopping_rounds": "5",
            "scale_pos_weight": "3",
            "seed": "7",
            "nthread": "1",
            "eval_metric": "LogLoss",
        }
    )
    assert hp == Hyperparameters(
        num_round=50,
        max_depth=4,
        eta=0.3,
        subsample=0.8,
        colsample_bytree=0.9,
        min_child_weight=2.0,
        gamma=0.1,
        reg_lambda=2.5,
        early_stopping_rounds=5,
        scale_pos_weight=3.0,
        seed=7,
        nthread=1,
        eval_metric="logloss",
    )
    params = hp.xgb_params(3.0)
    assert params["objective"] == "binary:logistic" and params["lambda"] == 2.5 and params["nthread"] == 1


def test_defaults_and_auto_and_sagemaker_keys():
    hp = parse_hyperparameters(
        {
            "scale_pos_weight": "auto",
            "sagemaker_region": "eu-west-1",
            "_tuning_objective_metric": "validation:auc",
        }
    )
    assert hp.scale_pos_weight == "auto"
    assert hp.num_round == Hyperparameters().num_round
    assert "nthread" not in Hyperparameters().xgb_params(1.0)  # 0 = every core
    assert parse_hyperparameters({"num_round": "100.0"}).num_round == 100  # SDKs may send 100.0


@pytest.mark.parametrize(
    "raw, named",
    [
        ({"num_rounds": "10"}, "num_rounds"),
        ({"num_round": "ten"}, "num_round"),
        ({"num_round": "0"}, "num_round"),
        ({"num_round": "2.5"}, "num_round"),
        ({"max_depth": "-1"}, "max_depth"),
        ({"eta": "0"}, "eta"),
        ({"eta": "nan"}, "eta"),
        ({"subsample": "1.5"}, "subsample"),
        ({"gamma": "-0.1"}, "gamma"),
        ({"scale_pos_weight": "0"}, "scale_pos_weight"),
        ({"scale_pos_weight": "automatic"}, "scale_pos_weight"),
        ({"eval_metric": "error"}, "eval_metric"),
        ({"early_stopping_rounds": "-3"}, "early_stopping_rounds"),
        ({"nthread": [1]}, "nthread"),
    ],
)
def test_bad_or_unknown_hyperparameter_is_named(raw, named):
    with pytest.raises(HyperparameterError, match=named):
        parse_hyperparameters(raw)


def test_not_an_object():
    with pytest.raises(HyperparameterError, match="JSON object"):
        parse_hyperparameters(["num_round"])
