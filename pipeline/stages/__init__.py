"""Stage entries: each loads params, reads inputs, calls pure functions, writes outputs.

Run one with ``python -m pipeline.stages.<name>`` (what dvc.yaml does) or ``engage <name>``.
"""
