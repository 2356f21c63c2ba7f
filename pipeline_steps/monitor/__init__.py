"""The monitor step: data quality, drift, model quality (realized and estimated), bias and
attribution drift over captured inference records, without SageMaker Model Monitor."""
