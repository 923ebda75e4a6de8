"""Running a program: the gate scheduler, its choosers and drivers, the executor that
turns a Program into an Outcome, the trace, and the feedback (interleaving features,
line coverage). Imports ``fuzz.program`` and ``model``.
"""
