"""Finding failing runs: the strategies, the worker's session, the campaign coordinator,
its stores and progress display, and the libFuzzer harness. Imports everything below it.
"""
