"""The oracles: what a correct kernel promises, checked while the model runs.

``errors`` (the verdicts), ``invariants`` (state checks after each step) and
``spec`` (ghost state: value provenance, pins, fork snapshots).
"""
