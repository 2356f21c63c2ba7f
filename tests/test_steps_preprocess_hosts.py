"""Preprocess on 1 host and on 3 hosts gives one answer.

Every host reads every input file and owns the rows whose entity key hashes to it: the
duplicates of a key and the history of an entity are on one host, the cut dates are taken over
every kept entity, and the hosts' partial baselines merge into the one-host baseline.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from pipeline_steps.common import baseline
from pipeline_steps.common.feature_spec import load_spec
from pipeline_steps.preprocess.__main__ import main
from workflow.datasets import merchant_credit as mc

ROOT = Path(__file__).resolve().parents[1]
SPEC_PATH = ROOT / "workflow" / "specs" / "merchant_credit.yaml"
SPEC = load_spec(SPEC_PATH)
HOSTS = ["algo-1", "algo-2", "algo-3"]
SPLITS = ("train", "validation", "test")


def _run_host(tmp: Path, data: Path, out: Path, host: str, hosts: list[str], monkeypatch) -> dict:
    """One host of a processing job: its resourceconfig.json, every input file, its own outputs."""
    ml = tmp / f"ml-{out.name}-{host}"
    (ml / "config").mkdir(parents=True)
    (ml / "config" / "resourceconfig.json").write_text(json.dumps({"current_host": host, "hosts": hosts}))
    monkeypatch.setenv("OPT_ML_ROOT", str(ml))
    args = ["--feature-spec", str(SPEC_PATH), "--output", str(out), "--threads", "1"]
    assert main([*args, "--entities", str(data / "entities"), "--history", str(data / "history")]) == 0
    return json.loads((out / "report" / f"report-{host}.json").read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hosts")
    mc.make(str(tmp / "data"), 1500, seed=5, parts=3)  # with the generator's bad rows and duplicates
    with pytest.MonkeyPatch.context() as mp:
        one = {"algo-1": _run_host(tmp, tmp / "data", tmp / "one", "algo-1", ["algo-1"], mp)}
        three = {h: _run_host(tmp, tmp / "data", tmp / "three", h, HOSTS, mp) for h in HOSTS}
    return tmp, one, three


def _read(out: Path, folder: str) -> pd.DataFrame:
    return pd.read_parquet(out / folder)


def test_every_row_is_on_exactly_one_host_and_the_rows_are_the_same(runs):
    tmp, one, three = runs
    for folder in [*SPLITS, *(f"feature_store/{g.name}" for g in SPEC.feature_groups)]:
        parts = [pd.read_parquet(tmp / "three" / folder / f"part-{h}.parquet") for h in HOSTS]
        ids = [set(p[SPEC.entity_id]) for p in parts]
        assert sum(len(i) for i in ids) == len(set().union(*ids)), folder  # disjoint
        assert all(len(p) for p in parts), folder  # every host has a share
        both = pd.concat(parts).sort_values(SPEC.entity_id).reset_index(drop=True)
        single = _read(tmp / "one", folder).sort_values(SPEC.entity_id).reset_index(drop=True)
        pd.testing.assert_frame_equal(both, single)


def test_quarantine_and_accounting_add_up_to_the_one_host_run(runs):
    tmp, one, three = runs
    keys = ["_table", "_source_file", "_row_number"]
    both = _read(tmp / "three", "quarantine").sort_values(keys).reset_index(drop=True)
    single = _read(tmp / "one", "quarantine").sort_values(keys).reset_index(drop=True)
    assert len(single) > 0 and single["_reason"].str.contains("duplicate").any()
    pd.testing.assert_frame_equal(both, single)
    for table in ("entities", "history"):
        alone = one["algo-1"][table]
        for key in ("rows_in", "rows_out", "rows_quarantined"):
            assert sum(r[table][key] for r in three.values()) == alone[key], (table, key)
        reasons = pd.DataFrame([r[table]["quarantined_by_reason"] for r in three.values()]).fillna(0).sum()
        assert reasons[reasons > 0].astype(int).to_dict() == alone["quarantined_by_reason"]


def test_cut_dates_and_split_sizes_are_global(runs):
    _, one, three = runs
    split = one["algo-1"]["split"]
    for report in three.values():
        assert (report["split"]["validation_start"], report["split"]["test_start"]) == (
            split["validation_start"],
            split["test_start"],
        )
    for name in SPLITS:
        assert sum(r["split"][name]["rows"] for r in three.values()) == split[name]["rows"]


def test_the_partial_baselines_merge_into_the_one_host_baseline(runs):
    tmp, _, _ = runs
    folder = tmp / "three" / "baseline"
    assert sorted(p.name for p in folder.iterdir()) == [f"partial-{h}.json" for h in HOSTS]
    merged = baseline.write_merged(folder, SPEC)
    single = json.loads((tmp / "one" / "baseline" / "statistics.json").read_text())
    assert merged == single
    assert json.loads((folder / "constraints.json").read_text()) == json.loads(
        (tmp / "one" / "baseline" / "constraints.json").read_text()
    )
