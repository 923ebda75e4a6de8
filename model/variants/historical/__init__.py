"""Historical kernels: one known COW/GUP bug each, as a variant of the v7.0 model.

Each class is ``model.kernel.Kernel`` (Linux v7.0) with the historical fix
reverted: it overrides the kernel path the fix changed, at the place the fix
changed it, and reproduces the pre-fix logic translated onto the v7.0
model's structure. Where the old kernel was structured differently (no
PageAnonExclusive before v5.19, no FAULT_FLAG_UNSHARE, VM_FAULT_WRITE, folio
instead of page APIs) the docstring says how the pre-fix logic was
translated. The oracles are the model's own and are never relaxed: a variant
is expected to make ``expected_oracle`` fire, and every other design (the
upstream kernel above all) to stay clean on the same program.

One file per variant, named after it; common.py holds what several share. The
variants register in the order imported below (``cowfuzz variants`` and the
bug benchmark list them so). Per variant, docs/historical.md gives the bug,
the affected kernels, the fix, the expected oracle, the reproducers
(corpus/<name>/*.cow) and the cow.c results; docs/variants/<name>.diff shows
each overridden function against upstream's (python -m model.variants.diff).

Not expressible in a base-page model without THP, hugetlb, KSM, migration,
MADV_FREE, userfaultfd or weak memory ordering: Huge Dirty COW
(CVE-2017-1000405), CVE-2020-29368, the FOLL_COW + pte_dirty rule broken
through UFFDIO_CONTINUE (CVE-2022-2590; no operation of the model makes a
dirty R/O PTE of a non-anon page in a private mapping), the uffd-wp TLB race
(6ce64428d620), the PageAnonExclusive barriers (088b8aa537c2) and MADV_FREE
vs GUP. The inverted soft-dirty test of can_change_pte_writable (after
64fe24a3e05e) breaks soft-dirty tracking only, which no oracle watches.
"""

# Each module registers its variant on import, in this order.
from model.variants.historical import dirty_cow  # noqa: F401
from model.variants.historical import reuse_mapcount  # noqa: F401
from model.variants.historical import swapin_reuse_mapcount  # noqa: F401
from model.variants.historical import fork_gup_fast_race  # noqa: F401
from model.variants.historical import fork_no_early_cow  # noqa: F401
from model.variants.historical import reuse_refcount  # noqa: F401
from model.variants.historical import misplaced_unlock_page  # noqa: F401
from model.variants.historical import ro_pin_no_unshare  # noqa: F401
from model.variants.historical import no_unshare_non_anon  # noqa: F401
from model.variants.historical import swapout_pinned_race  # noqa: F401
from model.variants.historical import swapout_pinned  # noqa: F401
from model.variants.historical import mprotect_ignores_pae  # noqa: F401
from model.variants.historical import clear_refs_pinned  # noqa: F401
