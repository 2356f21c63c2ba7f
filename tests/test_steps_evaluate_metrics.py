"""Evaluation metrics against scikit-learn's own computations, and the Model Registry format."""

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from pipeline_steps.evaluate.metrics import binary_metrics, registry_metrics, reliability_curve


@pytest.fixture(scope="module")
def case():
    rng = np.random.default_rng(7)
    y = (rng.random(1500) < 0.25).astype(float)
    p = np.clip(0.25 + 0.35 * (y - 0.25) + rng.normal(0, 0.2, y.size), 0, 1)
    p[:3] = [0.1, 0.5, 0.3]  # values on bin edges and on the threshold
    return y, p


@pytest.mark.parametrize("threshold", [0.5, 0.3])
def test_binary_metrics_match_sklearn(case, threshold):
    y, p = case
    m = binary_metrics(y, p, threshold)
    pred = (p >= threshold).astype(int)
    assert m["auc"] == pytest.approx(skm.roc_auc_score(y, p))
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, p))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, np.clip(p, 1e-15, 1 - 1e-15)))
    tn, fp, fn, tp = skm.confusion_matrix(y, pred).ravel()
    assert m["confusion_matrix"] == {"tn": tn, "fp": fp, "fn": fn, "tp": tp}
    assert m["threshold"] == threshold


def test_reliability_matches_sklearn_calibration_curve(case):
    y, p = case
    bins = reliability_curve(y, p)
    assert len(bins) == 10 and sum(b["count"] for b in bins) == len(y)
    observed, predicted = calibration_curve(y, p, n_bins=10, strategy="uniform")
    filled = [b for b in bins if b["count"]]
    np.testing.assert_allclose([b["observed_rate"] for b in filled], observed)
    np.testing.assert_allclose([b["mean_predicted"] for b in filled], predicted)
    empty = reliability_curve(np.array([0.0, 1.0]), np.array([0.05, 0.95]))
    assert empty[4] == {
        "bin_lower": 0.4,
        "bin_upper": 0.5,
        "mean_predicted": None,
        "observed_rate": None,
        "count": 0,
    }


def test_registry_format_matches_the_aws_documentation_example():
    # AWS's model-quality example: 4 rows, 1 positive, everything predicted positive but one.
    y = np.array([1.0, 0.0, 0.0, 0.0])
    p = np.array([0.9, 0.8, 0.7, 0.1])
    m = registry_metrics(y, p, 0.5)["binary_classification_metrics"]
    assert m["confusion_matrix"] == {"0": {"0": 1, "1": 2}, "1": {"0": 0, "1": 1}}
    expected = {
        "recall": 1.0,
        "precision": 1 / 3,
        "accuracy": 0.5,
        "recall_best_constant_classifier": 1.0,
        "precision_best_constant_classifier": 0.25,
        "accuracy_best_constant_classifier": 0.25,
        "true_positive_rate": 1.0,
        "true_negative_rate": 1 / 3,
        "false_positive_rate": 2 / 3,
        "false_negative_rate": 0.0,
        "auc": 1.0,
        "f0_5": 0.3846153846153846,
        "f1": 0.5,
        "f2": 0.7142857142857143,
    }
    for key, value in expected.items():
        assert m[key] == {"value": pytest.approx(value), "standard_deviation": "NaN"}, key
    roc = m["receiver_operating_characteristic_curve"]
    assert set(roc) == {"false_positive_rates", "true_positive_rates"}
    assert roc["false_positive_rates"][0] == 0.0 and roc["true_positive_rates"][-1] == 1.0
    assert set(m["precision_recall_curve"]) == {"precisions", "recalls"}


def test_registry_standard_deviations_and_curve_size(case):
    y, p = case
    m = registry_metrics(y, p, 0.5)["binary_classification_metrics"]
    assert m["auc"]["value"] == pytest.approx(skm.roc_auc_score(y, p))
    assert isinstance(m["auc"]["standard_deviation"], float) and 0 < m["auc"]["standard_deviation"] < 0.05
    roc = m["receiver_operating_characteristic_curve"]
    assert 2 < len(roc["false_positive_rates"]) == len(roc["true_positive_rates"]) <= 201
    assert registry_metrics(y, p, 0.5) == registry_metrics(y, p, 0.5)  # seeded
