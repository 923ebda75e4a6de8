"""The COW PTE designs: RFC v2, v4, and the relaxed form with either choice for reclaim
(see common.py)."""

from model.variants.cowpte import (relaxed, relaxed_shared_unmap, rfc2,  # noqa: F401
                                   v4)  # (they register themselves)
