"""The workflow on this machine and the definition it runs: the SageMaker pipeline definition
builder, the local runner that executes it, the demo, the data generators and the feature specs.

The steps themselves live in `pipeline_steps/`; nothing here is packed into a step image.
"""
