"""Finding failing runs: the strategies, the worker's session, the campaign coordinator,
its minimizer process, its stores and progress display, how its processes start and
stop (procs), and the libFuzzer harness. Imports everything below it.
"""
