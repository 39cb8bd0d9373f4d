"""Outcome models: tidy results and model cards, with the statsmodels traps guarded."""
