"""Pull-request review of the synthesized app: `python -m review --base REF` (`make review`).

Compares two cloud assemblies (the base ref's and the working tree's) per environment and
stack, offline: resource changes with CDK's own diff engine, destructive changes to stateful
resources, IAM and security-group deltas, cdk-nag findings and acknowledgements, the model
version each environment serves and the monthly cost estimate.
"""
