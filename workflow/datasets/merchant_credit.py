"""Synthetic credit-risk data for small merchants, shaped by `workflow/specs/merchant_credit.yaml`.

Two tables:

- entities: one loan application per merchant (application_id, application_date, the
  `defaulted` label, the merchant's profile);
- history: the merchant's monthly activity from 24 months before to 3 months after the
  application month.  The months after the application exist on purpose: they carry the
  outcome (a defaulting merchant pays late and sells less) and must never reach a feature.

The label comes from a logistic model of real signal (credit score, repayment ratio, days
late, chargebacks, volume trend, request-to-revenue, industry, tenure) plus noise that no
feature sees, so a good model reaches an AUC near 0.8 and a linear baseline does worse.

Everything is vectorised numpy: the history is built as an (n, 28) grid and flattened, so
a million merchants (about 27 million history rows) take seconds.  `add_mess` then makes the
data realistic: text in numeric columns, out-of-range values, unknown categories, missing
required values, exact duplicates, repeated application ids, outliers.  The same seed gives
the same bytes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from config import REPO_ROOT
from pipeline_steps.common.contract import ConfigError
from pipeline_steps.common.feature_spec import load_spec
from workflow.datasets.mess import add_mess

# The categories come from the spec (one source); the tables below follow INDUSTRIES' order.
SPEC_PATH = REPO_ROOT / "workflow" / "specs" / "merchant_credit.yaml"
_SPEC = load_spec(SPEC_PATH)
INDUSTRIES = _SPEC.column("industry").categories
REGIONS = _SPEC.column("region").categories
MONTHS_BEFORE = 24
MONTHS_AFTER = 3
OFFSETS = np.arange(-MONTHS_BEFORE, MONTHS_AFTER + 1)  # month offsets from the application month
START = np.datetime64("2022-01-01")
SPAN_DAYS = 1096  # applications spread over three years
DRIFT_START = np.datetime64("2025-01-01")
DRIFT_SPAN_DAYS = 365

_INDUSTRY_P = np.array([0.26, 0.18, 0.20, 0.10, 0.10, 0.07, 0.09])
_INDUSTRY_P_DRIFT = np.array([0.18, 0.26, 0.14, 0.07, 0.15, 0.07, 0.13])
_INDUSTRY_RISK = np.array([0.0, 0.55, -0.15, -0.45, 0.45, 0.2, 0.3])
_AVG_TICKET = np.array([40.0, 25.0, 120.0, 150.0, 800.0, 200.0, 60.0])
_CHARGEBACK_MULT = np.array([1.2, 0.8, 1.0, 0.6, 1.0, 0.9, 4.0])
_SEASON_AMPLITUDE = np.array([0.12, 0.10, 0.03, 0.02, 0.15, 0.05, 0.08])


def _month_index(dates: np.ndarray) -> np.ndarray:
    """datetime64[D] -> months since 1970-01 (int64)."""
    return dates.astype("datetime64[M]").astype(np.int64)


def _ids(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    return np.char.add(prefix, np.char.zfill(numbers.astype(np.int64).astype("U"), width)).astype(object)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def generate(rows: int, seed: int = 7, *, drift: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Clean, typed entities and history (no mess yet).  The draws happen in a fixed order, so
    the same seed gives the same data."""
    if rows < 1:
        raise ConfigError(f"rows {rows}: expected at least 1")
    rng = np.random.default_rng(seed)
    profile = _profiles(rng, rows, drift)
    activity = _monthly_activity(rng, profile, drift)
    defaulted = _label(rng, profile, activity, drift)
    _outcome_after_application(activity, defaulted)
    return _tables(profile, activity, defaulted, drift)


@dataclass
class _Profiles:
    """One merchant per row: what the application shows, and the hidden health behind it."""

    industry: np.ndarray  # index into INDUSTRIES
    region: np.ndarray  # index into REGIONS
    health: np.ndarray  # latent financial health: no feature sees it directly
    tenure: np.ndarray
    employees: np.ndarray
    revenue: np.ndarray
    credit: np.ndarray
    prior: np.ndarray
    request: np.ndarray
    app_date: np.ndarray
    app_month: np.ndarray


@dataclass
class _Activity:
    """The monthly grid, (merchants, len(OFFSETS)); `exists` marks months that have a row."""

    exists: np.ndarray
    volume: np.ndarray
    txn: np.ndarray
    chargebacks: np.ndarray
    due: np.ndarray
    paid: np.ndarray
    days_late: np.ndarray


def _profiles(rng: np.random.Generator, n: int, drift: bool) -> _Profiles:
    industry = rng.choice(len(INDUSTRIES), size=n, p=_INDUSTRY_P_DRIFT if drift else _INDUSTRY_P)
    region = rng.integers(0, len(REGIONS), size=n)
    health = rng.standard_normal(n)  # the merchant's latent financial health
    if drift:
        health -= 0.25  # a harder market
    tenure = np.clip(np.round(rng.gamma(2.0, 30.0, size=n) + 2), 0, 600).astype(np.int64)
    employees = np.clip(np.round(np.exp(rng.normal(1.3, 0.9, size=n))) - 1, 0, 10_000).astype(np.int64)
    revenue = np.exp(rng.normal(9.9 + 0.3 * np.log1p(employees), 0.55, size=n))
    credit = np.clip(np.round(680 + 60 * (0.55 * health + 0.84 * rng.standard_normal(n))), 300, 850)
    prior = rng.random(n) < 0.35
    request = np.clip(revenue * np.exp(rng.normal(np.log(1.3), 0.6, size=n)), 100, 5_000_000)
    start, span = (DRIFT_START, DRIFT_SPAN_DAYS) if drift else (START, SPAN_DAYS)
    app_date = start + rng.integers(0, span, size=n).astype("timedelta64[D]")
    return _Profiles(
        industry,
        region,
        health,
        tenure,
        employees,
        revenue,
        credit,
        prior,
        request,
        app_date,
        _month_index(app_date),
    )


def _monthly_activity(rng: np.random.Generator, p: _Profiles, drift: bool) -> _Activity:
    """Card volume with trend, season and a recent decline for distressed merchants; chargebacks;
    repayments, paid late more often by the less healthy."""
    n = len(p.industry)
    k = OFFSETS[None, :].astype(np.float64)
    m = len(OFFSETS)
    exists = (OFFSETS[None, :] >= -p.tenure[:, None]) & (rng.random((n, m)) > 0.03)
    month_of_year = (p.app_month[:, None] + OFFSETS[None, :]) % 12
    season = _SEASON_AMPLITUDE[p.industry][:, None] * np.cos(2 * np.pi * (month_of_year - 11) / 12)
    distress = rng.normal(0.0, 1.0, size=n) * 0.6 - 0.8 * p.health  # drives the recent decline
    slope = rng.normal(0.002, 0.004, size=n)
    decline = np.clip(distress, 0, None)[:, None] * 0.07 * np.clip(k + 7, 0, 6)  # last 6 months
    card_share = rng.beta(5, 3, size=n) * (0.8 if drift else 1.0)
    log_vol = (
        np.log(p.revenue * card_share)[:, None]
        + slope[:, None] * k
        + season
        - decline
        + rng.normal(0, 0.12, size=(n, m))
    )
    volume = np.exp(log_vol)
    txn = rng.poisson(volume / _AVG_TICKET[p.industry][:, None]).astype(np.float64)
    cb_rate = 0.0015 * _CHARGEBACK_MULT[p.industry] * np.exp(-0.6 * p.health + 0.3 * rng.standard_normal(n))
    chargebacks = rng.poisson(txn * cb_rate[:, None]).astype(np.float64)
    due = (p.revenue * rng.beta(2, 12, size=n))[:, None] * np.exp(rng.normal(0, 0.05, size=(n, m)))
    pay_health = 0.7 * p.health + 0.7 * rng.standard_normal(n)
    late_p = _sigmoid(-2.6 - 1.3 * pay_health + (0.35 if drift else 0.0))
    late = rng.random((n, m)) < late_p[:, None]
    paid = due * np.where(late, rng.uniform(0.3, 0.95, size=(n, m)), 1.0)
    days_late = np.where(late, rng.poisson(np.clip(12 - 9 * pay_health, 3, 60)[:, None], size=(n, m)) + 1, 0)
    return _Activity(exists, volume, txn, chargebacks, due, paid, days_late.astype(np.float64))


def _label(rng: np.random.Generator, p: _Profiles, a: _Activity, drift: bool) -> np.ndarray:
    """Default: logistic in what the features can see, plus noise that no feature sees."""
    n = len(p.industry)
    window = (OFFSETS >= -12) & (OFFSETS <= -1)
    recent = (OFFSETS >= -3) & (OFFSETS <= -1)
    vol_obs = np.where(a.exists, a.volume, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        trend = np.nanmean(vol_obs[:, recent], axis=1) / np.nanmean(vol_obs[:, window], axis=1)
        repay = np.where(a.exists, a.paid, 0)[:, window].sum(1) / np.where(a.exists, a.due, 0)[:, window].sum(
            1
        )
    trend = np.nan_to_num(trend, nan=1.0)
    repay = np.nan_to_num(repay, nan=1.0)
    max_late = np.where(a.exists, a.days_late, 0)[:, window].max(1)
    cb6 = np.where(a.exists, a.chargebacks, 0)[:, (OFFSETS >= -6) & (OFFSETS <= -1)].sum(1)
    score = (p.credit - 680) / 60
    r2r = np.clip(np.log(p.request / p.revenue), -2, 3)
    logit = (  # hinges, thresholds and interactions: a linear model cannot follow them all
        -5.4
        + (0.55 if drift else 0.0)
        + 1.2 * np.clip(-(score + 0.6), 0, None)
        - 0.25 * score
        + 9.0 * np.clip(0.93 - repay, 0, None)
        + 0.9 * (max_late > 20)
        + 0.6 * (max_late > 45)
        + 0.35 * np.log1p(cb6)
        + 6.0 * np.clip(0.92 - trend, 0, None)
        + 7.0 * np.clip(trend - 1.05, 0, None)
        + 0.45 * r2r * (1.0 + (p.tenure < 24))
        + _INDUSTRY_RISK[p.industry]
        + 0.5 * (p.tenure < 12)
        - 0.2 * p.prior
        + rng.normal(0, 1.3, size=n)  # what no feature sees
    )
    return rng.random(n) < _sigmoid(logit)


def _outcome_after_application(a: _Activity, defaulted: np.ndarray) -> None:
    """After the application the outcome shows: the leak preprocessing must avoid."""
    hit = defaulted[:, None] & (OFFSETS[None, :] >= 0)
    a.volume = np.where(hit, a.volume * 0.55, a.volume)
    a.paid = np.where(hit, a.paid * 0.3, a.paid)
    a.days_late = np.where(hit, a.days_late + 45, a.days_late)


def _tables(
    p: _Profiles, a: _Activity, defaulted: np.ndarray, drift: bool
) -> tuple[pd.DataFrame, pd.DataFrame]:
    first = 50_000_000 if drift else 0
    numbers = np.arange(len(p.industry), dtype=np.int64) + first
    merchant_ids = _ids("M", numbers, 8)
    application_ids = _ids("A", numbers, 9)
    entities = pd.DataFrame(
        {
            "application_id": application_ids,
            "application_date": pd.Series(np.datetime_as_string(p.app_date, unit="D"), dtype=object),
            "defaulted": pd.array(defaulted.astype(np.int8), dtype="Int8"),
            "merchant_id": merchant_ids,
            "industry": np.asarray(INDUSTRIES, dtype=object)[p.industry],
            "region": np.asarray(REGIONS, dtype=object)[p.region],
            "tenure_months": p.tenure,
            "employees": pd.array(p.employees, dtype="Int32"),
            "monthly_revenue": np.round(p.revenue, 2),
            "owner_credit_score": pd.array(p.credit.astype(np.int64), dtype="Int16"),
            "requested_amount": np.round(p.request, 2),
            "has_prior_loan": pd.array(p.prior, dtype="boolean"),
        }
    )
    rows_i, cols_j = np.nonzero(a.exists)
    history = pd.DataFrame(
        {
            "merchant_id": pd.Categorical.from_codes(rows_i, categories=pd.Index(merchant_ids, dtype=object)),
            "month": (p.app_month[rows_i] + OFFSETS[cols_j]).astype("datetime64[M]").astype("datetime64[D]"),
            "card_volume": np.round(a.volume[a.exists], 2),
            "txn_count": a.txn[a.exists],
            "chargebacks": a.chargebacks[a.exists],
            "amount_due": np.round(a.due[a.exists], 2),
            "amount_paid": np.round(a.paid[a.exists], 2),
            "days_late": a.days_late[a.exists],
        }
    )
    return entities, history


def _entity_table(e: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(e, preserve_index=False)


def _history_table(h: pd.DataFrame) -> pa.Table:
    cat = h["merchant_id"].array
    code = cat.codes
    mask = code < 0
    merchant = pa.DictionaryArray.from_arrays(
        pa.array(np.where(mask, 0, code).astype(np.int32), mask=mask),
        pa.array(cat.categories.to_numpy(), type=pa.string()),
    ).cast(pa.string())
    columns = {"merchant_id": merchant, "month": pa.array(h["month"].to_numpy().astype("datetime64[D]"))}
    for name in ("card_volume", "amount_due", "amount_paid"):
        columns[name] = pa.array(h[name].to_numpy(), from_pandas=True)
    for name in ("txn_count", "chargebacks", "days_late"):
        values = h[name].to_numpy()
        columns[name] = pa.array(np.nan_to_num(values, nan=0).astype(np.int64), mask=np.isnan(values))
    return pa.table(columns)


def _part_of(e: pd.DataFrame, parts: int) -> np.ndarray:
    """Part number by application id, so duplicates of one application share a file."""
    digits = e["application_id"].astype("string").str.slice(1).fillna("")
    number = pd.to_numeric(digits, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    fallback = np.arange(len(e))
    return np.where(np.isnan(number), fallback, np.nan_to_num(number)).astype(np.int64) % parts


def write(
    out: str, entities: pd.DataFrame, history: pd.DataFrame, *, fmt: str = "parquet", parts: int = 1
) -> dict[str, list[str]]:
    """Writes DIR/entities/part-0000N.<fmt> and DIR/history/part-0000N.<fmt>."""
    import os

    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if fmt not in ("parquet", "csv"):
        raise ConfigError(f"format {fmt!r}: expected parquet or csv")
    if parts < 1:
        raise ConfigError(f"parts {parts}: expected at least 1")
    written: dict[str, list[str]] = {"entities": [], "history": []}
    e_part = _part_of(entities, parts)
    # History by merchant number, so a host can tell which history rows are its own.
    h_part = np.maximum(history["merchant_id"].array.codes, 0).astype(np.int64) % parts
    e_table = _entity_table(entities)
    h_table = _history_table(history)
    for kind, table, part in (("entities", e_table, e_part), ("history", h_table, h_part)):
        folder = os.path.join(out, kind)
        os.makedirs(folder, exist_ok=True)
        for p in range(parts):
            piece = table if parts == 1 else table.filter(pa.array(part == p))
            path = os.path.join(folder, f"part-{p:05d}.{fmt}")
            if fmt == "parquet":
                pq.write_table(piece, path)
            else:
                pacsv.write_csv(piece, path)
            written[kind].append(path)
    return written


def make(
    out: str,
    rows: int,
    seed: int = 7,
    *,
    drift: bool = False,
    fmt: str = "parquet",
    parts: int = 1,
    mess: bool = True,
) -> dict[str, list[str]]:
    entities, history = generate(rows, seed, drift=drift)
    if mess:
        entities, history = add_mess(entities, history, seed)
    return write(out, entities, history, fmt=fmt, parts=parts)
