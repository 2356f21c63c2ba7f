"""report.html: one self-contained page (plots embedded as PNG), for a person deciding
whether to act: alerts first, then drift, quality, segments and attributions."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from pipeline_steps.common.atomic import write_text
from pipeline_steps.monitor.drift import CategoricalDrift, NumericDrift

MAX_DISTRIBUTION_PLOTS = 8
STYLE = """body{font-family:sans-serif;margin:24px;max-width:1200px}
table{border-collapse:collapse;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}
.alerts{background:#fdecea;padding:8px 24px}.ok{background:#eafaf1;padding:8px 24px}"""


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=90, metadata={"Software": None})
    plt.close(fig)
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def _drift_plot(per_feature: list[dict[str, Any]]) -> str:
    names = [r["feature"] for r in per_feature]
    values = [r["psi"] for r in per_feature]
    colors = ["#c0392b" if r["drifted"] else "#2e86c1" for r in per_feature]
    fig, ax = plt.subplots(figsize=(9, 0.28 * len(names) + 1.2))
    ax.barh(names, values, color=colors)
    for r, y in zip(per_feature, range(len(names)), strict=True):
        ax.plot([r["psi_threshold"]] * 2, [y - 0.4, y + 0.4], color="k", lw=1)
    ax.invert_yaxis()
    ax.set(xlabel="PSI (black tick: the feature's threshold; red: drifted)", title="Drift per feature")
    return _png(fig)


def _distribution_plots(
    per_feature: list[dict[str, Any]], accumulators: dict[str, Any], prediction: NumericDrift | None
) -> str:
    ranked = sorted(per_feature, key=lambda r: -r["psi"])[:MAX_DISTRIBUTION_PLOTS]
    items: list[Any] = [accumulators[r["feature"]] for r in ranked]
    if prediction is not None and prediction.present:
        items.insert(0, prediction)
    if not items:
        return ""
    cols = 4
    rows = -(-len(items) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(12, 2.6 * rows), squeeze=False)
    for ax, acc in zip(axes.flat, items, strict=False):
        if isinstance(acc, NumericDrift):
            base, cur = acc.baseline_shares(), acc.current_shares()
            labels = [f"≤{e:.3g}" for e in acc.edges] + [">", "NA"]
            x = np.arange(len(base))
            ax.bar(x - 0.2, base, 0.4, label="baseline", color="#95a5a6")
            ax.bar(x + 0.2, cur, 0.4, label="current", color="#e67e22")
            ax.set_xticks(x, labels, rotation=60, fontsize=6)
        elif isinstance(acc, CategoricalDrift):
            keys, base, cur = acc.shares()
            x = np.arange(len(keys))
            ax.bar(x - 0.2, base, 0.4, label="baseline", color="#95a5a6")
            ax.bar(x + 0.2, cur, 0.4, label="current", color="#e67e22")
            ax.set_xticks(x, keys, rotation=60, fontsize=6)
        ax.set_title(acc.name, fontsize=9)
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(items) :]:
        ax.axis("off")
    return _png(fig)


def _quality_plot(q: dict[str, Any], evaluation: dict[str, Any]) -> str:
    points = q["over_time"]
    if not points:
        return ""
    x = [np.datetime64(p["start_hour"], "h").astype("datetime64[m]").astype(object) for p in points]
    fig, ax = plt.subplots(figsize=(9, 3.2))
    for key, style, label in (
        ("estimated_auc", "o--", "estimated AUC (CBPE)"),
        ("realized_auc", "s-", "realized AUC (labels)"),
        ("estimated_recall", "^--", "estimated recall"),
        ("realized_recall", "v-", "realized recall"),
    ):
        xs = [a for a, p in zip(x, points, strict=True) if p[key] is not None]
        ys = [p[key] for p in points if p[key] is not None]
        if ys:
            ax.plot(xs, ys, style, label=label)
    if evaluation.get("auc"):
        ax.axhline(evaluation["auc"], color="k", lw=0.8, ls=":", label="AUC at evaluation")
    ax.set(ylim=(0, 1), title="Quality over time", ylabel="value")
    ax.legend(fontsize=7, loc="lower left")
    fig.autofmt_xdate()
    return _png(fig)


def _segment_plot(bias: dict[str, Any]) -> str:
    blocks = [(name, r) for name, r in bias["segments"].items() if r["segments"]]
    if not blocks:
        return ""
    fig, axes = plt.subplots(1, len(blocks), figsize=(5 * len(blocks), 3), squeeze=False)
    for ax, (name, r) in zip(axes.flat, blocks, strict=False):
        segs = r["segments"]
        ax.bar([s["segment"] for s in segs], [s["approval_rate"] for s in segs], color="#27ae60")
        ratio = r["four_fifths_ratio"]
        ax.set_title(f"{name}: approval rate (4/5 ratio {ratio:.2f})" if ratio else name, fontsize=9)
        ax.set_ylim(0, 1)
        ax.tick_params(axis="x", rotation=45, labelsize=7)
    return _png(fig)


def _attribution_plot(a: dict[str, Any]) -> str:
    if not a.get("available"):
        return ""
    feats = a["features"][:15]
    y = np.arange(len(feats))
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(feats) + 1.2))
    ax.barh(y - 0.2, [f["baseline_share"] for f in feats], 0.4, label="baseline", color="#95a5a6")
    ax.barh(y + 0.2, [f["share"] for f in feats], 0.4, label="now", color="#8e44ad")
    ax.set_yticks(y, [f["feature"] for f in feats])
    ax.invert_yaxis()
    ax.set(xlabel="share of mean |SHAP|", title=f"Attributions (distance {a['distance']:.3f})")
    ax.legend(fontsize=7)
    return _png(fig)


def _table(rows: list[list[Any]], head: list[str]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4f}"
        return html.escape("" if v is None else str(v))

    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><tr>{''.join(f'<th>{html.escape(h)}</th>' for h in head)}</tr>{body}</table>"


def write_report(
    path: Path,
    summary: dict[str, Any],
    accumulators: dict[str, Any],
    prediction: NumericDrift | None,
    violation_list: list[dict[str, str]],
) -> None:
    s = summary
    drift, q = s["drift"], s["quality"]
    alerts = "".join(
        f"<li><b>{html.escape(a['kind'])}</b>: {html.escape(a['message'])}</li>" for a in s["alerts"]
    )
    quality_rows = []
    for key in ("auc", "precision", "recall", "brier"):
        quality_rows.append(
            [
                key,
                s["evaluation"].get(key),
                (q["estimated"] or {}).get(key),
                (q["estimated_on_labeled"] or {}).get(key),
                (q["realized"] or {}).get(key),
            ]
        )
    feature_rows = [
        [
            r["feature"],
            r["kind"],
            r["psi"],
            r.get("ks_statistic", r.get("linf")),
            r.get("ks_pvalue", r.get("jensen_shannon")),
            r["psi_threshold"],
            "DRIFT (" + r["reason"] + ")" if r["drifted"] else "",
        ]
        for r in drift["per_feature"]
    ]
    segment_tables = ""
    for name, r in s["bias"]["segments"].items():
        segment_tables += f"<h3>{html.escape(name)}</h3>" + _table(
            [
                [
                    g["segment"],
                    g["records"],
                    g["approval_rate"],
                    g["labeled"],
                    g["default_rate"],
                    g["auc"],
                    g["recall"],
                ]
                for g in r["segments"]
            ],
            ["segment", "records", "approval rate", "labeled", "default rate", "AUC", "recall"],
        )
        gaps = ", ".join(
            f"{k} {v['gap']:.3f} ({v['lowest']} vs {v['highest']})" for k, v in r["largest_gaps"].items()
        )
        segment_tables += f"<p>largest gaps: {html.escape(gaps or 'none')}</p>"
    cap, lab = s["capture"], s["labels"]
    by_check = html.escape(str(s["data_quality"]["by_check"]))
    violations = _table(
        [[v["feature_name"], v["constraint_check_type"], v["description"]] for v in violation_list],
        ["feature", "check", "description"],
    )
    attributions = _attribution_plot(s["attribution"]) or html.escape(s["attribution"].get("reason", ""))
    endpoint, window = html.escape(s["endpoint"]), s["window"]
    rejected = html.escape(str(cap["rejected_by_reason"]))
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>Monitoring: {endpoint}</title>
<style>{STYLE}</style></head><body>
<h1>Monitoring report: {endpoint}</h1>
<p>window {html.escape(str(window["start"] or "all captured"))} .. {html.escape(str(window["end"] or ""))};
records {s["records"]:,} (first hour {window["first_record_hour"]}, last {window["last_record_hour"]});
capture lines {cap["lines"]:,}, rejected {cap["rejected_lines"]:,} {rejected};
labels accepted {lab["accepted"]:,}, matched {lab["matched"]:,}, unknown ids {lab["unknown_inference_ids"]:,},
rejected {lab["rejected_lines"]:,}.</p>
<div class="{"alerts" if s["alerts"] else "ok"}"><h2>Alerts</h2><ul>{alerts or "<li>none</li>"}</ul></div>
<h2>Drift: {drift["drifted_features"]} of {drift["features"]} features ({drift["share"]:.0%})</h2>
{_drift_plot(drift["per_feature"]) if drift["per_feature"] else ""}
{_table(feature_rows, ["feature", "kind", "PSI", "KS D / L-inf", "KS p / JS", "PSI threshold", "verdict"])}
<h2>Reference vs current distributions (prediction first, then the most drifted)</h2>
{_distribution_plots(drift["per_feature"], accumulators, prediction)}
<h2>Model quality (threshold {q["decision_threshold"]:.3f}; {q["labeled"]:,} labeled records)</h2>
{_table(quality_rows, ["metric", "at evaluation", "estimated (all)", "estimated (labeled rows)", "realized"])}
<p>Estimate assumptions: {html.escape((q["estimated"] or {}).get("assumptions", "no records"))}.</p>
{_quality_plot(q, s["evaluation"])}
<h2>Segments</h2>{_segment_plot(s["bias"])}{segment_tables}
<h2>Attribution drift</h2>{attributions}
<h2>Data quality ({s["data_quality"]["violations"]} violations)</h2>
<p>In Model Monitor's format: constraint_violations.json; by check: {by_check}</p>
{violations}
</body></html>"""
    write_text(path, page)
