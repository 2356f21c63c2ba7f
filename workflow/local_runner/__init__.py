"""Runs the SageMaker pipeline definition JSON on this machine: no AWS, no Docker."""
