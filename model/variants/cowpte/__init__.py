"""The COW PTE designs: RFC v2, v4, and the relaxed form (see common.py)."""

from model.variants.cowpte import relaxed, rfc2, v4  # noqa: F401  (they register themselves)
