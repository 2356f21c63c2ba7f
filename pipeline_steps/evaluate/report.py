"""Plots (PNG, matplotlib Agg) and report.html (relative image links)."""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn import metrics as skm

ROC_PNG = "roc.png"
PR_PNG = "precision_recall.png"
CALIBRATION_PNG = "calibration.png"
PLOTS = (ROC_PNG, PR_PNG, CALIBRATION_PNG)


def _save(fig: Any, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)


def write_plots(
    out: Path, y: np.ndarray, scores: Mapping[str, np.ndarray], summaries: Mapping[str, dict]
) -> list[str]:
    """scores: label -> predicted probabilities (model, baseline...); returns the file names."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, p in scores.items():
        fpr, tpr, _ = skm.roc_curve(y, p)
        ax.plot(fpr, tpr, label=f"{name} (AUC {summaries[name]['auc']:.3f})")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="chance / base rate")
    ax.set(xlabel="False positive rate", ylabel="True positive rate", title="ROC curve")
    ax.legend(loc="lower right")
    _save(fig, out / ROC_PNG)

    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, p in scores.items():
        precision, recall, _ = skm.precision_recall_curve(y, p)
        ax.plot(recall, precision, label=name)
    ax.axhline(float(np.mean(y)), color="k", ls="--", lw=0.8, label="base rate")
    ax.set(xlabel="Recall", ylabel="Precision", title="Precision-recall curve", ylim=(0, 1.02))
    ax.legend(loc="upper right")
    _save(fig, out / PR_PNG)

    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="perfectly calibrated")
    for name in scores:
        bins = [b for b in summaries[name]["reliability"] if b["count"]]
        ax.plot(
            [b["mean_predicted"] for b in bins],
            [b["observed_rate"] for b in bins],
            "o-",
            label=f"{name} (Brier {summaries[name]['brier']:.3f})",
        )
    ax.set(
        xlabel="Mean predicted probability",
        ylabel="Observed positive rate",
        title="Calibration (10 bins)",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    ax.legend(loc="upper left")
    _save(fig, out / CALIBRATION_PNG)
    return list(PLOTS)


_ROWS = (
    ("AUC (ROC)", "auc", "{:.4f}"),
    ("Precision", "precision", "{:.4f}"),
    ("Recall", "recall", "{:.4f}"),
    ("F1", "f1", "{:.4f}"),
    ("Brier score", "brier", "{:.4f}"),
    ("Log loss", "log_loss", "{:.4f}"),
    ("Latency, batch (ms/row)", "latency_ms_per_row", "{:.5f}"),
)


def _cell(value: Any, fmt: str) -> str:
    return "n/a" if value is None else fmt.format(value)


def _size_row(name: str, size: Mapping[str, Any]) -> str:
    cells = f"<td>{size['rows']}</td><td>{size['positives']}</td><td>{size['positive_rate']:.4f}</td>"
    return f"<tr><th>{html.escape(name)}</th>{cells}</tr>"


def write_html(out: Path, evaluation: Mapping[str, Any], columns: Mapping[str, str]) -> Path:
    """columns: evaluation.json key -> column heading."""
    esc = html.escape
    head = "".join(f"<th>{esc(title)}</th>" for title in columns.values())
    body = []
    for label, key, fmt in _ROWS:
        cells = "".join(f"<td>{_cell(evaluation[c].get(key), fmt)}</td>" for c in columns)
        body.append(f"<tr><th>{esc(label)}</th>{cells}</tr>")
    cells = "".join(
        "<td>{}</td>".format(
            _cell((evaluation[c].get("latency_ms_single_row") or {}).get("p50"), "{:.3f}")
            + " / "
            + _cell((evaluation[c].get("latency_ms_single_row") or {}).get("p95"), "{:.3f}")
        )
        for c in columns
    )
    body.append(f"<tr><th>Latency, single row p50 / p95 (ms)</th>{cells}</tr>")
    threshold = evaluation["model"]["threshold"]
    sizes = evaluation["data"]
    images = "\n".join(
        f'<figure><img src="{esc(name)}" alt="{esc(name)}" width="440"></figure>' for name in PLOTS
    )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Model evaluation</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; margin-bottom: 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 4px 10px; text-align: right; }}
th:first-child {{ text-align: left; }}
figure {{ display: inline-block; margin: 0 1em 1em 0; }}
</style></head><body>
<h1>Model evaluation: {esc(str(evaluation.get("spec_name", "")))}</h1>
<p>Threshold {threshold:g}. Feature spec digest <code>{esc(evaluation["feature_spec_digest"])}</code>.</p>
<h2>Data</h2>
<table>
<tr><th>Split</th><th>Rows</th><th>Positives</th><th>Positive rate</th></tr>
{_size_row("test", sizes["test"])}
{_size_row("train (baseline fit)", sizes["train"])}
</table>
<h2>Metrics on the test split</h2>
<table>
<tr><th>Metric</th>{head}</tr>
{chr(10).join(body)}
</table>
<h2>Plots</h2>
{images}
</body></html>
"""
    path = out / "report.html"
    path.write_text(page)
    return path
