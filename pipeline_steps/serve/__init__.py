"""The serving step: an HTTP inference server for SageMaker hosting and batch transform."""
