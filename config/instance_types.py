"""SageMaker instance types per use, from botocore's SageMaker service model (offline).

The model lists what SageMaker accepts for each kind of job, so a new family (`ml.m7i.xlarge`,
a GPU type) is allowed as soon as the pinned botocore knows it, and a hosting-only type is
refused for training.  No AWS call: the model ships inside botocore.
"""

from __future__ import annotations

import difflib
from functools import cache

# Use -> the request shape whose enum lists the allowed types.
SHAPES = {
    "processing": "ProcessingInstanceType",
    "training": "TrainingInstanceType",
    "hosting": "ProductionVariantInstanceType",
    "transform": "TransformInstanceType",
}


@cache
def allowed(use: str) -> tuple[str, ...]:
    """Every instance type botocore's SageMaker model allows for `use`, sorted."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    return tuple(sorted(model.shape_for(SHAPES[use]).enum))


def problem(value: object, use: str) -> str | None:
    """None when `value` is a valid `use` instance type, else what is allowed (for the message)."""
    types = allowed(use)
    if isinstance(value, str) and value in types:
        return None
    close = difflib.get_close_matches(str(value), types, n=5, cutoff=0.6) or list(types[:5])
    elsewhere = [u for u in SHAPES if u != use and isinstance(value, str) and value in allowed(u)]
    note = f"; it is a {'/'.join(elsewhere)} type" if elsewhere else ""
    return (
        f"one of the {len(types)} {use} instance types in botocore's SageMaker model (closest: {close}){note}"
    )
