"""Evaluation step: the trained model vs a logistic-regression baseline and the base rate."""
