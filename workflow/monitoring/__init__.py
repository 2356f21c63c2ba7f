"""Local monitoring loop: capture and label files in SageMaker's formats, the monitor run over
the local capture prefix, and the retraining trigger with its cooldown."""
