"""The baseline the model must beat: a logistic regression on the same model matrix."""

from __future__ import annotations

import numpy as np
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler


def fit_logistic(X: np.ndarray, y: np.ndarray, *, seed: int = 0) -> Pipeline:
    """Median imputation + scaling + logistic regression, fitted on the train split.

    Features are the same `transform.model_matrix` columns the model sees (category codes
    as numbers), so the comparison is model capacity, not feature engineering.
    """
    pipeline = Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", StandardScaler()),
            ("logistic", LogisticRegression(max_iter=1000, random_state=seed)),
        ]
    )
    return pipeline.fit(X, y)
