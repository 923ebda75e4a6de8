"""The planted bugs (fuzz/bench/planted.py), where the tests have always found them."""

from fuzz.bench.planted import GupFastNoSeqcount, RoPinNoUnshare  # noqa: F401
