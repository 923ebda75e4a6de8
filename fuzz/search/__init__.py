"""Finding failing runs: the strategies, the worker's session, the campaign coordinator
and how it reaches its workers (local processes, or Ray actors on a cluster), its
minimizer and distiller processes, its stores, saved state and progress display, how
its processes start and stop (procs), and the libFuzzer harness. Imports everything
below it.
"""
