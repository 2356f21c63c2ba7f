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

The merchants are made in blocks of BLOCK_ROWS, each from its own random stream (seed, block
number), as vectorised numpy: a block's history is an (n, 28) grid, flattened.  `make` writes
the blocks as they come (row groups appended to each part file, renamed into place when
complete), so memory stays flat at any size, and with several workers the blocks are made in
parallel.  The block size is fixed, so the bytes depend on the seed only: not on the number
of workers, nor on how a caller reads them.  The mess (`mess.py`: text in numeric columns,
out-of-range values, unknown categories, missing required values, exact duplicates, repeated
application ids, outliers) is added per block from another stream of the same seed.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context

import numpy as np
import pandas as pd
import pyarrow as pa

from config import REPO_ROOT
from pipeline_steps.common.contract import ConfigError
from pipeline_steps.common.feature_spec import load_spec
from workflow.datasets.mess import COUNTS, History, add_mess, entity_frame, mess_block
from workflow.datasets.part_files import PartWriters, discard, publish

# The categories come from the spec (one source); the tables below follow INDUSTRIES' order.
SPEC_PATH = REPO_ROOT / "workflow" / "specs" / "merchant_credit.yaml"
_SPEC = load_spec(SPEC_PATH)
INDUSTRIES = _SPEC.column("industry").categories
REGIONS = _SPEC.column("region").categories
_INDUSTRY_NAMES = pa.array(INDUSTRIES, pa.string())
_REGION_NAMES = pa.array(REGIONS, pa.string())
MONTHS_BEFORE = 24
MONTHS_AFTER = 3
OFFSETS = np.arange(-MONTHS_BEFORE, MONTHS_AFTER + 1)  # month offsets from the application month
START = np.datetime64("2022-01-01")
SPAN_DAYS = 1096  # applications spread over three years
DRIFT_START = np.datetime64("2025-01-01")
DRIFT_SPAN_DAYS = 365
DRIFT_FIRST_NUMBER = 50_000_000  # drifted merchants' ids never meet the normal ones
BLOCK_ROWS = 50_000  # merchants per block: fixed, so the data never depends on how it is split up
CHUNK_BLOCKS = 2  # blocks per file: a file of 100k merchants, about 2.6M history rows
KINDS = ("entities", "history")
_GENERATE, _MESS = 0, 1  # the two random streams of a block

_INDUSTRY_P = np.array([0.26, 0.18, 0.20, 0.10, 0.10, 0.07, 0.09])
_INDUSTRY_P_DRIFT = np.array([0.18, 0.26, 0.14, 0.07, 0.15, 0.07, 0.13])
_INDUSTRY_RISK = np.array([0.0, 0.55, -0.15, -0.45, 0.45, 0.2, 0.3])
_AVG_TICKET = np.array([40.0, 25.0, 120.0, 150.0, 800.0, 200.0, 60.0])
_CHARGEBACK_MULT = np.array([1.2, 0.8, 1.0, 0.6, 1.0, 0.9, 4.0])
_SEASON_AMPLITUDE = np.array([0.12, 0.10, 0.03, 0.02, 0.15, 0.05, 0.08])
# The clean entities' types, fixed whatever a block holds (the mess turns revenue and tenure into
# text: upstream exports them so, which is how unparseable numbers get in).
ENTITY_SCHEMA = pa.schema(
    {
        "application_id": pa.string(),
        "application_date": pa.string(),
        "defaulted": pa.int8(),
        "merchant_id": pa.string(),
        "industry": pa.string(),
        "region": pa.string(),
        "tenure_months": pa.int64(),
        "employees": pa.int32(),
        "monthly_revenue": pa.float64(),
        "owner_credit_score": pa.int16(),
        "requested_amount": pa.float64(),
        "has_prior_loan": pa.bool_(),
    }
)
# The season's shape by the application's month of the year (row, 0 = January) and the month
# offset (column): a table, so the grid takes rows of it instead of a cosine per cell.
_SEASON = np.cos(2 * np.pi * ((np.arange(12)[:, None] + OFFSETS[None, :]) % 12 - 11) / 12)


def _month_index(dates: np.ndarray) -> np.ndarray:
    """datetime64[D] -> months since 1970-01 (int64)."""
    return dates.astype("datetime64[M]").astype(np.int64)


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pa.StringArray:
    """prefix + the numbers zero-padded to `width` digits, built as bytes: no Python string per id."""
    numbers = numbers.astype(np.int64)
    if len(numbers) and (numbers.min() < 0 or numbers.max() >= 10**width):  # wider: as str.zfill does
        return pa.array([f"{prefix}{v:0{width}d}" for v in numbers.tolist()], pa.string())
    size = len(prefix) + width
    chars = np.empty((len(numbers), size), dtype=np.uint8)
    chars[:, : len(prefix)] = np.frombuffer(prefix.encode(), dtype=np.uint8)
    chars[:, len(prefix) :] = numbers[:, None] // 10 ** np.arange(width - 1, -1, -1, dtype=np.int64) % 10 + 48
    offsets = np.arange(0, (len(numbers) + 1) * size, size, dtype=np.int32)
    return pa.StringArray.from_buffers(len(numbers), pa.py_buffer(offsets), pa.py_buffer(chars))


def merchant_ids(numbers: np.ndarray) -> np.ndarray:
    return np.asarray(_ids("M", numbers, 8).to_numpy(zero_copy_only=False), dtype=object)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _block_rng(seed: int, block: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, block, stream])


def _blocks(rows: int) -> list[tuple[int, int]]:
    """(first merchant index, merchants) of each block."""
    return [(first, min(BLOCK_ROWS, rows - first)) for first in range(0, rows, BLOCK_ROWS)]


def _check(rows: int) -> None:
    if rows < 1:
        raise ConfigError(f"rows {rows}: expected at least 1")


def generate(rows: int, seed: int = 7, *, drift: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Clean, typed entities and history (no mess yet), all in memory: for tests and samples;
    `make` writes any size block by block.  The same seed gives the same data."""
    _check(rows)
    made = [_clean_block(seed, i, first, n, drift) for i, (first, n) in enumerate(_blocks(rows))]
    entities = entity_frame(pa.concat_tables([e for e, _ in made]))
    history = History.concat([h for _, h in made])
    first_number = DRIFT_FIRST_NUMBER if drift else 0
    return entities, history.to_frame(
        merchant_ids(np.arange(rows, dtype=np.int64) + first_number), first_number
    )


def _clean_block(seed: int, block: int, first: int, n: int, drift: bool) -> tuple[pa.Table, History]:
    """One block's clean entities and history; its draws come from the block's own stream."""
    rng = _block_rng(seed, block, _GENERATE)
    profile = _profiles(rng, n, drift)
    activity = _monthly_activity(rng, profile, drift)
    defaulted = _label(rng, profile, activity, drift)
    _outcome_after_application(activity, defaulted)
    numbers = np.arange(first, first + n, dtype=np.int64) + (DRIFT_FIRST_NUMBER if drift else 0)
    return _entities(profile, defaulted, numbers), _history(profile, activity, numbers)


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
    repayments, paid late more often by the less healthy.  The late payments' amounts and days
    are drawn for the late months only (one in ten): the same distribution, a tenth of the work."""
    n = len(p.industry)
    k = OFFSETS[None, :].astype(np.float64)
    m = len(OFFSETS)
    exists = (OFFSETS[None, :] >= -p.tenure[:, None]) & (rng.random((n, m)) > 0.03)
    season = _SEASON_AMPLITUDE[p.industry][:, None] * _SEASON[p.app_month % 12]
    distress = rng.normal(0.0, 1.0, size=n) * 0.6 - 0.8 * p.health  # drives the recent decline
    slope = rng.normal(0.002, 0.004, size=n)
    decline = np.clip(distress, 0, None)[:, None] * 0.07 * np.clip(k + 7, 0, 6)  # last 6 months
    card_share = rng.beta(5, 3, size=n) * (0.8 if drift else 1.0)
    log_vol = rng.normal(0, 0.12, size=(n, m))
    log_vol += np.log(p.revenue * card_share)[:, None] + slope[:, None] * k + season - decline
    volume = np.exp(log_vol, out=log_vol)
    txn = rng.poisson(volume / _AVG_TICKET[p.industry][:, None])
    cb_rate = 0.0015 * _CHARGEBACK_MULT[p.industry] * np.exp(-0.6 * p.health + 0.3 * rng.standard_normal(n))
    chargebacks = rng.poisson(txn * cb_rate[:, None])
    due = rng.normal(0, 0.05, size=(n, m))
    due = np.exp(due, out=due) * (p.revenue * rng.beta(2, 12, size=n))[:, None]
    pay_health = 0.7 * p.health + 0.7 * rng.standard_normal(n)
    late_p = _sigmoid(-2.6 - 1.3 * pay_health + (0.35 if drift else 0.0))
    late_row, late_col = np.nonzero(rng.random((n, m)) < late_p[:, None])
    paid = due.copy()
    paid[late_row, late_col] *= rng.uniform(0.3, 0.95, size=len(late_row))
    days_late = np.zeros((n, m), dtype=np.int64)
    lam = np.clip(12 - 9 * pay_health, 3, 60)[late_row]
    days_late[late_row, late_col] = rng.poisson(lam) + 1
    return _Activity(exists, volume, txn, chargebacks, due, paid, days_late)


def _label(rng: np.random.Generator, p: _Profiles, a: _Activity, drift: bool) -> np.ndarray:
    """Default: logistic in what the features can see, plus noise that no feature sees."""
    n = len(p.industry)
    window = (OFFSETS >= -12) & (OFFSETS <= -1)
    recent = (OFFSETS >= -3) & (OFFSETS <= -1)
    seen = a.exists[:, window]

    def mean_seen(months: np.ndarray) -> np.ndarray:  # over the months that have a row; NaN: none
        return np.where(a.exists[:, months], a.volume[:, months], 0).sum(1) / a.exists[:, months].sum(1)

    with np.errstate(invalid="ignore", divide="ignore"):
        trend = mean_seen(recent) / mean_seen(window)
        repay = np.where(seen, a.paid[:, window], 0).sum(1) / np.where(seen, a.due[:, window], 0).sum(1)
    trend = np.nan_to_num(trend, nan=1.0)
    repay = np.nan_to_num(repay, nan=1.0)
    max_late = np.where(seen, a.days_late[:, window], 0).max(1)
    last6 = (OFFSETS >= -6) & (OFFSETS <= -1)
    cb6 = np.where(a.exists[:, last6], a.chargebacks[:, last6], 0).sum(1)
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
    after = OFFSETS >= 0
    rows = np.flatnonzero(defaulted)
    cells = np.ix_(rows, np.flatnonzero(after))
    a.volume[cells] *= 0.55
    a.paid[cells] *= 0.3
    a.days_late[cells] += 45


def _entities(p: _Profiles, defaulted: np.ndarray, numbers: np.ndarray) -> pa.Table:
    """The clean entity table (ENTITY_SCHEMA)."""
    return pa.table(
        {
            "application_id": _ids("A", numbers, 9),
            "application_date": pa.array(p.app_date).cast(pa.string()),  # YYYY-MM-DD
            "defaulted": pa.array(defaulted.astype(np.int8)),
            "merchant_id": _ids("M", numbers, 8),
            "industry": _INDUSTRY_NAMES.take(pa.array(p.industry)),
            "region": _REGION_NAMES.take(pa.array(p.region)),
            "tenure_months": pa.array(p.tenure),
            "employees": pa.array(p.employees.astype(np.int32)),
            "monthly_revenue": pa.array(np.round(p.revenue, 2)),
            "owner_credit_score": pa.array(p.credit.astype(np.int16)),
            "requested_amount": pa.array(np.round(p.request, 2)),
            "has_prior_loan": pa.array(p.prior),
        },
        schema=ENTITY_SCHEMA,
    )


def _history(p: _Profiles, a: _Activity, numbers: np.ndarray) -> History:
    cells = np.flatnonzero(a.exists)  # row-major: merchant by merchant, month by month

    def values(grid: np.ndarray, decimals: int | None = None) -> np.ndarray:
        taken = grid.ravel().take(cells)
        return taken if decimals is None else np.round(taken, decimals, out=taken)

    # months as indexes into a table of their first days: a calendar conversion per month, not per row
    first = int(p.app_month.min()) + OFFSETS[0] if len(cells) else 0
    last = int(p.app_month.max()) + OFFSETS[-1] if len(cells) else 0
    first_days = np.arange(first, last + 1).astype("datetime64[M]").astype("datetime64[D]")
    return History(
        number=np.repeat(numbers, a.exists.sum(axis=1)),
        month=first_days[values(p.app_month[:, None] + (OFFSETS - first)[None, :])],
        card_volume=values(a.volume, 2),
        txn_count=values(a.txn),
        chargebacks=values(a.chargebacks),
        amount_due=values(a.due, 2),
        amount_paid=values(a.paid, 2),
        days_late=values(a.days_late),
    )


# ---- writing ------------------------------------------------------------------------------


def _history_table(h: History, merchants: tuple[int, pa.Array] | None = None) -> pa.Table:
    """merchant_id is dictionary-coded over `merchants` (the first number, the ids from it on):
    the ids are formatted once per merchant, not once per row, and Parquet stores them as its
    own dictionary (readers see strings).  Without `merchants`, the range the rows span."""
    missing = h.number < 0
    if merchants is None:
        known = h.number[~missing]
        merchants = (
            _merchant_dictionary(int(known.min()), int(known.max() - known.min()) + 1)
            if len(known)
            else (0, pa.array([], pa.string()))
        )
    first, dictionary = merchants
    codes = _with_nulls((h.number - first).astype(np.int32), missing)
    merchant = pa.DictionaryArray.from_arrays(codes, dictionary)
    days = h.month.astype(np.int64).astype(np.int32)  # date32's layout: days since 1970-01-01
    columns = {"merchant_id": merchant, "month": pa.array(days).view(pa.date32())}
    for name in ("card_volume", "amount_due", "amount_paid"):
        values = getattr(h, name)
        columns[name] = _with_nulls(values, np.isnan(values))
    for name in COUNTS:
        values = getattr(h, name)
        columns[name] = _with_nulls(values, values < 0)
    return pa.table(columns)


def _with_nulls(values: np.ndarray, missing: np.ndarray) -> pa.Array:
    """values (numeric) as an Arrow array, null where `missing`: the validity bitmap packed by
    numpy in one pass (pa.array's mask= and from_pandas= cost 3-8 times more here)."""
    array = pa.array(values)
    if not missing.any():
        return array
    validity = pa.py_buffer(np.packbits(~missing, bitorder="little"))
    return pa.Array.from_buffers(array.type, len(array), [validity, array.buffers()[1]])


def _merchant_dictionary(first: int, count: int) -> tuple[int, pa.Array]:
    return first, _ids("M", np.arange(first, first + count, dtype=np.int64), 8)


def _application_number(ids: pd.Series) -> np.ndarray:
    """The number in each application id, -1 where it is missing or not a number."""
    digits = ids.astype("string").str.slice(1).fillna("")
    number = pd.to_numeric(digits, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return np.where(np.isnan(number), -1, number).astype(np.int64)


def _split(table: pa.Table, part: np.ndarray, parts: int) -> list[pa.Table]:
    if parts == 1:
        return [table]
    if len(table) == 0:
        return [table] * parts
    return [table.filter(pa.array(part == p)) for p in range(parts)]


def _block_tables(
    seed: int, block: int, first: int, n: int, drift: bool, mess: bool, parts: int
) -> tuple[list[pa.Table], list[pa.Table]]:
    """One block, messed up if asked, as Arrow tables per part (entities, history).  Entities
    go to parts by merchant number (every copy of an application shares a file), history too
    (rows without a merchant go to part 0)."""
    entities, history = _clean_block(seed, block, first, n, drift)
    # the block's merchant ids, in order: the dictionary of the history's merchant_id
    first_number = first + (DRIFT_FIRST_NUMBER if drift else 0)
    merchants = (first_number, entities.column("merchant_id").combine_chunks())
    rows, pieces = np.arange(n), [history]  # rows: each entity row's merchant in the block
    if mess:
        entities, rows, pieces = mess_block(entities, history, _block_rng(seed, block, _MESS))
    h_tables = [_split(_history_table(h, merchants), np.maximum(h.number, 0) % parts, parts) for h in pieces]
    return (
        _split(entities, (first + rows) % parts, parts),
        [pa.concat_tables([t[p] for t in h_tables]) for p in range(parts)],
    )


def default_workers() -> int:
    """Processes that make the data: the CPUs this process may use, at most 8."""
    return max(1, min(8, len(os.sched_getaffinity(0))))


def _chunks(rows: int) -> list[list[tuple[int, int, int]]]:
    """(block number, first merchant, merchants) of the blocks of each chunk (file)."""
    blocks = [(i, first, n) for i, (first, n) in enumerate(_blocks(rows))]
    return [blocks[i : i + CHUNK_BLOCKS] for i in range(0, len(blocks), CHUNK_BLOCKS)]


def _write_chunk(
    out: str,
    chunk: int,
    blocks: list[tuple[int, int, int]],
    seed: int,
    drift: bool,
    mess: bool,
    fmt: str,
    parts: int,
) -> dict[str, list[tuple[str, str]]]:
    """Makes and writes one chunk, block by block (one row group per block): files
    part-<chunk * parts + p> for p in 0..parts-1 of each table, under temporary names."""
    writers = {kind: PartWriters(os.path.join(out, kind), fmt, parts, chunk * parts) for kind in KINDS}
    try:
        for block, first, n in blocks:
            e_tables, h_tables = _block_tables(seed, block, first, n, drift, mess, parts)
            writers["entities"].write(e_tables)
            writers["history"].write(h_tables)
        return {kind: w.close() for kind, w in writers.items()}
    except BaseException:
        for w in writers.values():
            w.discard()
        raise


def _publish_all(out: str, fmt: str, done: list[dict[str, list[tuple[str, str]]]]) -> dict[str, list[str]]:
    return {kind: publish(os.path.join(out, kind), fmt, [f for d in done for f in d[kind]]) for kind in KINDS}


def write(
    out: str, entities: pd.DataFrame, history: pd.DataFrame, *, fmt: str = "parquet", parts: int = 1
) -> dict[str, list[str]]:
    """Writes tables held in memory (as `generate` or `add_mess` return them, or edited by a
    caller; entity types as pandas infers them) into part files the way `make` does."""
    _check_format(fmt, parts)
    h = History.from_frame(history)
    number = _application_number(entities["application_id"])
    e_part = np.where(number < 0, np.arange(len(entities)), number) % parts
    tables = {
        "entities": _split(pa.Table.from_pandas(entities, preserve_index=False), e_part, parts),
        "history": _split(_history_table(h), np.maximum(h.number, 0) % parts, parts),
    }
    writers = {kind: PartWriters(os.path.join(out, kind), fmt, parts) for kind in KINDS}
    try:
        for kind, w in writers.items():
            w.write(tables[kind])
        done = {kind: w.close() for kind, w in writers.items()}
    except BaseException:
        for w in writers.values():
            w.discard()
        raise
    return _publish_all(out, fmt, [done])


def _check_format(fmt: str, parts: int) -> None:
    if fmt not in ("parquet", "csv"):
        raise ConfigError(f"format {fmt!r}: expected parquet or csv")
    if parts < 1:
        raise ConfigError(f"parts {parts}: expected at least 1")


def make(
    out: str,
    rows: int,
    seed: int = 7,
    *,
    drift: bool = False,
    fmt: str = "parquet",
    parts: int = 1,
    mess: bool = True,
    workers: int | None = None,
) -> dict[str, list[str]]:
    """Writes DIR/entities/part-NNNNN.<fmt> and DIR/history/part-NNNNN.<fmt>: for each chunk
    of CHUNK_BLOCKS * BLOCK_ROWS merchants, `parts` files per table (file i holds part i % parts
    of chunk i // parts), made by `workers` processes in parallel, one block in memory per
    process.  The files and their bytes depend on the seed only, not on `workers`."""
    _check(rows)
    _check_format(fmt, parts)
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise ConfigError(f"workers {workers}: expected at least 1")
    jobs = [(out, c, blocks, seed, drift, mess, fmt, parts) for c, blocks in enumerate(_chunks(rows))]
    done: list[dict[str, list[tuple[str, str]]]] = []
    futures: list[Future[dict[str, list[tuple[str, str]]]]] = []
    try:
        if workers == 1 or len(jobs) == 1:
            for job in jobs:
                done.append(_write_chunk(*job))
        else:
            context = get_context("fork")  # the workers start with this module loaded
            with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context) as pool:
                futures = [pool.submit(_write_chunk, *job) for job in jobs]
                done = [f.result() for f in futures]
    except BaseException:  # the chunks already written are not published: remove them
        finished = [f.result() for f in futures if f.done() and not f.cancelled() and f.exception() is None]
        for d in done + finished:
            for files in d.values():
                discard(files)
        raise
    return _publish_all(out, fmt, done)


__all__ = ["BLOCK_ROWS", "CHUNK_BLOCKS", "add_mess", "generate", "make", "merchant_ids", "write"]
