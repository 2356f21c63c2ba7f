"""Feature Store records per spec feature group, written as files.

The processing job runs network-isolated, so it cannot call the Feature Store runtime; the
IngestFeatures step (`pipeline_steps/ingest/`) loads these files into the feature groups.
"""

from __future__ import annotations

import pandas as pd

from pipeline_steps.common.feature_records import iso_times
from pipeline_steps.common.feature_spec import FeatureGroup, FeatureSpec


def group_records(features: pd.DataFrame, spec: FeatureSpec, group: FeatureGroup) -> pd.DataFrame:
    """Record id, event time (ISO-8601 string) and the group's features, typed as Feature Store will."""
    out = pd.DataFrame(
        {
            spec.entity_id: features[spec.entity_id].astype("string"),
            spec.entity_time: iso_times(features[spec.entity_time]),
        }
    )
    for name in group.features:
        out[name] = features[name]
    return out
