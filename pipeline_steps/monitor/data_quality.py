"""The checks Model Monitor's data-quality job makes, against the baseline's constraints.json,
written in its constraint_violations.json format (`{"violations": [{"feature_name",
"constraint_check_type", "description"}]}`) so tooling built for Model Monitor reads them.

- data_type_check: values that do not parse as the baseline type (text in a number column, a
  fraction in an Integral column, a negative where the baseline is non-negative) above
  `1 - datatype_check_threshold`; capture lines that are not usable records are reported here
  too, under the feature name `captureData`, with their count per reason.
- completeness_check: the share of present values falls below the baseline's completeness by
  more than the sampling noise of both windows (3 standard errors, at least one point).
- baseline_drift_check: the distance to the baseline distribution (KS D for numbers,
  L-infinity for categories) above the constraints' comparison thresholds.
- missing_column_check / extra_column_check: records without an expected column, or with
  columns the baseline does not know (header-less CSV records with too few / too many cells).
- categorical_values_check: values outside the baseline's domain above
  `1 - domain_content_threshold`.
"""

from __future__ import annotations

import math
from typing import Any

from pipeline_steps.monitor.capture import CaptureStats


def violation(feature: str, check: str, description: str) -> dict[str, str]:
    return {"feature_name": feature, "constraint_check_type": check, "description": description}


def check(
    constraints: dict[str, Any],
    drift: dict[str, dict[str, Any]],
    invalid: dict[str, dict[str, int]],
    capture: CaptureStats,
    baseline_items: int,
) -> list[dict[str, str]]:
    """drift: feature -> drift result; invalid: feature -> {"unparseable", "non_integral",
    "negative", "out_of_domain"} counts."""
    config = constraints.get("monitoring_config", {})
    type_threshold = float(config.get("datatype_check_threshold", 1.0))
    domain_threshold = float(config.get("domain_content_threshold", 1.0))
    distribution = config.get("distribution_constraints", {})
    compare = distribution.get("perform_comparison", "Enabled") == "Enabled"
    out: list[dict[str, str]] = []
    if capture.rejected_lines:
        reasons = ", ".join(f"{reason}: {n}" for reason, n in capture.rejected.most_common())
        out.append(
            violation(
                "captureData",
                "data_type_check",
                f"{capture.rejected_lines} of {capture.lines} capture lines are not usable records "
                f"({reasons})",
            )
        )
    for feature in constraints.get("features", []):
        name = feature["name"]
        result = drift.get(name)
        if result is None:
            continue
        current = result["current"]
        present, missing = current["count"], current["missing"]
        total = present + missing
        bad = invalid.get(name, {})
        if total:
            conforming = 1 - (bad.get("unparseable", 0) + bad.get("non_integral", 0)) / total
            if conforming < type_threshold:
                out.append(
                    violation(
                        name,
                        "data_type_check",
                        f"{1 - conforming:.2%} of values are not {feature['inferred_type']} "
                        f"({bad.get('unparseable', 0)} unparseable, "
                        f"{bad.get('non_integral', 0)} not whole numbers)",
                    )
                )
            if bad.get("negative") and (feature.get("num_constraints") or {}).get("is_non_negative"):
                out.append(
                    violation(
                        name,
                        "data_type_check",
                        f"{bad['negative']} negative values; the baseline is non-negative",
                    )
                )
            completeness = present / total
            expected = float(feature.get("completeness", 1.0))
            # sampling noise of both windows: 3 standard errors of the difference, at least 1 point
            noise = max(expected * (1 - expected), 1e-12) * (1 / total + 1 / max(baseline_items, 1))
            tolerance = max(0.01, 3 * math.sqrt(noise))
            if completeness < expected - tolerance:
                out.append(
                    violation(
                        name,
                        "completeness_check",
                        f"completeness {completeness:.4f} is below the baseline's {expected:.4f} "
                        f"(tolerance {tolerance:.4f} for {total} records)",
                    )
                )
        domains = (feature.get("string_constraints") or {}).get("domains") or []
        if domains and present:
            known_share = 1 - bad.get("out_of_domain", 0) / present
            if known_share < domain_threshold:
                out.append(
                    violation(
                        name,
                        "categorical_values_check",
                        f"{bad.get('out_of_domain', 0)} values ({1 - known_share:.2%}) are outside the "
                        f"baseline domain {domains}",
                    )
                )
        if compare and present:
            if result["kind"] == "numeric" and result["ks_statistic"] > float(
                distribution.get("comparison_threshold", 0.1)
            ):
                out.append(
                    violation(
                        name,
                        "baseline_drift_check",
                        f"distance {result['ks_statistic']:.4f} (Kolmogorov-Smirnov) exceeds "
                        f"{distribution.get('comparison_threshold', 0.1)}",
                    )
                )
            if result["kind"] == "categorical" and result["linf"] > float(
                distribution.get("categorical_comparison_threshold", 0.1)
            ):
                out.append(
                    violation(
                        name,
                        "baseline_drift_check",
                        f"distance {result['linf']:.4f} (L-infinity) exceeds "
                        f"{distribution.get('categorical_comparison_threshold', 0.1)}",
                    )
                )
    for column, n in sorted(capture.absent_columns.items()):
        out.append(violation(column, "missing_column_check", f"{n} records do not carry the column"))
    if capture.short_rows:
        out.append(
            violation(
                "captureData", "missing_column_check", f"{capture.short_rows} CSV records have too few cells"
            )
        )
    for column, n in sorted(capture.extra_columns.items()):
        out.append(
            violation(column, "extra_column_check", f"{n} records carry this column the baseline lacks")
        )
    if capture.long_rows:
        out.append(
            violation(
                "captureData", "extra_column_check", f"{capture.long_rows} CSV records have too many cells"
            )
        )
    return out
