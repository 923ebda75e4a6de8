"""Kernels with one race each: most of the deep tier of the bug benchmark.

One file per bug. Each is ``model.kernel.Kernel`` (Linux v7.0) with one
mistake a kernel developer would recognise -- a historical fix reverted, or
a plausible slip (a missing recheck after a lock drop, a wrong ordering, a
flush skipped) -- in the kernel path it names. Unlike most of
model/variants/historical/, each needs several operations in several
threads and preemptions at the right points. The deep tier (``tier =
"deep"``) is those a random walk needs a median above 20,000 executions for,
or misses within 60 s; ``pageout-before-flush`` turned out shallower (a
median of 4,229) and counts with the shallow bugs, and one historical kernel,
``misplaced-unlock-page``, turned out deep and counts with these. ``python -m
fuzz.bench.depth`` counts the executions.
Each has a hand-minimized reproducer in corpus/<name>/, clean upstream.
"""

from model.variants.mutants import (  # noqa: F401  (they register themselves)
    clear_refs_read_lock, gup_fast_seq_parity, pageout_before_flush, parallel_zap_flush_miss,
    reclaim_batched_flush_miss, table_free_no_rcu)
