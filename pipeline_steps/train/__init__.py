"""Training step: XGBoost binary classifier under SageMaker's training container contract."""
