"""Page table entries and tables: pte_t, the PTE table page, pmd_t.

Mirrors include/linux/pgtable.h and arch/x86/include/asm/pgtable.h (v6.x),
scaled down: an address is a page number, a PTE table holds PTRS_PER_PTE
entries, and the PMD level has one entry per table, so a PTE table can be
shared between mms (the COW PTE designs) and write-protected at the PMD.

``Pte`` values are immutable, like pte_t: the pte_mk*() helpers return a
new value and ``pte_same`` compares values. ``None`` is pte_none().
A present PTE holds its folio; a swap PTE holds its swap slot.
"""

from __future__ import annotations

from model.locks import SpinLock

PTRS_PER_PTE = 4       # entries per PTE table (512 on x86-64)
USER_PAGES = 16        # the user address space, in pages
PTRS_PER_PMD = USER_PAGES // PTRS_PER_PTE


def pmd_index(addr: int) -> int:
    return addr // PTRS_PER_PTE


def pte_index(addr: int) -> int:
    return addr % PTRS_PER_PTE


def pmd_addr_start(addr: int) -> int:
    return addr - addr % PTRS_PER_PTE


class Pte:
    """pte_t. Present: folio + write/dirty/young/soft_dirty/special bits.
    Swap: a swap slot + the exclusive and soft-dirty bits."""

    __slots__ = ("present", "folio", "write", "dirty", "young", "soft_dirty", "special",
                 "swp", "swp_exclusive")

    def __init__(self, present, folio=None, write=False, dirty=False, young=False,
                 soft_dirty=False, special=False, swp=None, swp_exclusive=False):
        self.present = present
        self.folio = folio
        self.write = write
        self.dirty = dirty
        self.young = young
        self.soft_dirty = soft_dirty
        self.special = special
        self.swp = swp
        self.swp_exclusive = swp_exclusive

    def _key(self):
        return (self.present, self.folio, self.write, self.dirty, self.young,
                self.soft_dirty, self.special, self.swp, self.swp_exclusive)

    def __eq__(self, other):
        return isinstance(other, Pte) and self._key() == other._key()

    def __hash__(self):
        return hash((self.present, self.write, self.swp))

    def _copy(self, **kw) -> "Pte":
        p = Pte(self.present, self.folio, self.write, self.dirty, self.young,
                self.soft_dirty, self.special, self.swp, self.swp_exclusive)
        for k, v in kw.items():
            setattr(p, k, v)
        return p

    def __repr__(self) -> str:
        if self.present:
            bits = "".join(c for c, on in (("W", self.write), ("D", self.dirty),
                                           ("S", self.soft_dirty), ("Z", self.special)) if on)
            return f"{self.folio.name}{':' + bits if bits else ''}"
        return f"swp{self.swp}{':X' if self.swp_exclusive else ''}"


# -- constructors and predicates (include/linux/pgtable.h, asm/pgtable.h) --
def mk_pte(folio, write=False, dirty=False) -> Pte:
    return Pte(True, folio, write=write, dirty=dirty, young=True, soft_dirty=dirty)


def pte_mkspecial_zero(zero_folio) -> Pte:
    """pte_mkspecial(pfn_pte(my_zero_pfn(addr), vma->vm_page_prot))."""
    return Pte(True, zero_folio, young=True, special=True)


def swp_entry_to_pte(slot: int, exclusive: bool = False, soft_dirty: bool = False) -> Pte:
    return Pte(False, swp=slot, swp_exclusive=exclusive, soft_dirty=soft_dirty)


def pte_none(pte) -> bool:
    return pte is None


def pte_present(pte) -> bool:
    return pte is not None and pte.present


def is_swap_pte(pte) -> bool:
    return pte is not None and not pte.present


def pte_write(pte) -> bool:
    return pte.write


def pte_dirty(pte) -> bool:
    return pte.dirty


def pte_soft_dirty(pte) -> bool:
    return pte.soft_dirty


def pte_swp_soft_dirty(pte) -> bool:
    return pte.soft_dirty


def pte_swp_exclusive(pte) -> bool:
    return pte.swp_exclusive


def pte_same(a, b) -> bool:
    return a == b


def pte_mkwrite(pte) -> Pte:
    return pte._copy(write=True)


def pte_wrprotect(pte) -> Pte:
    return pte._copy(write=False)


def pte_mkdirty(pte) -> Pte:
    """x86 pte_mkdirty sets _PAGE_DIRTY and _PAGE_SOFT_DIRTY."""
    return pte._copy(dirty=True, soft_dirty=True)


def pte_mkclean(pte) -> Pte:
    return pte._copy(dirty=False)


def pte_mkold(pte) -> Pte:
    return pte._copy(young=False)


def pte_mkyoung(pte) -> Pte:
    return pte._copy(young=True)


def pte_mksoft_dirty(pte) -> Pte:
    return pte._copy(soft_dirty=True)


def pte_clear_soft_dirty(pte) -> Pte:
    return pte._copy(soft_dirty=False)


def pte_swp_mkexclusive(pte) -> Pte:
    return pte._copy(swp_exclusive=True)


def pte_swp_clear_exclusive(pte) -> Pte:
    return pte._copy(swp_exclusive=False)


def pte_swp_mksoft_dirty(pte) -> Pte:
    return pte._copy(soft_dirty=True)


class PteTable:
    """A PTE table page (struct ptdesc): its entries, its split ptl, its refcount.

    ``refcount`` is the page-table page's reference count; upstream keeps it
    at 1, the COW PTE designs count every PMD that points at the table.
    """

    __slots__ = ("tid", "ptes", "ptl", "refcount", "freed", "cow_pte_owner")

    def __init__(self, tid: int):
        self.tid = tid
        self.ptes = [None] * PTRS_PER_PTE
        self.ptl = SpinLock(f"ptl(t{tid})")
        self.refcount = 1
        self.freed = False
        self.cow_pte_owner = None   # RFC v2 COW PTE: the owning pmd slot, or EXCLUSIVE

    @property
    def name(self) -> str:
        return f"t{self.tid}"

    def __repr__(self) -> str:
        return self.name


class PtePointer:
    """A located PTE slot (the kernel's pte_t *): its table and index."""

    __slots__ = ("table", "idx")

    def __init__(self, table: PteTable, idx: int):
        self.table = table
        self.idx = idx


class Pmd:
    """pmd_t pointing at a PTE table; ``write`` is the PMD's R/W bit.

    x86 ANDs the R/W bits of all levels, so a write through a write-protected
    PMD faults even when the PTE is writable.
    """

    __slots__ = ("table", "write")

    def __init__(self, table: PteTable, write: bool = True):
        self.table = table
        self.write = write

    def __eq__(self, other):
        return isinstance(other, Pmd) and self.table is other.table and self.write == other.write

    def __hash__(self):
        return hash((self.table.tid, self.write))

    def __repr__(self) -> str:
        return f"{self.table.name}{'' if self.write else ':RO'}"


def pmd_none(pmd) -> bool:
    return pmd is None


def pmd_write(pmd) -> bool:
    return pmd.write


def pmd_wrprotect(pmd: Pmd | None) -> Pmd | None:
    """arch/x86 pmd_wrprotect: clears _PAGE_RW, so a none pmd (0) stays none."""
    return None if pmd is None else Pmd(pmd.table, False)


def pmd_mkwrite(pmd: Pmd) -> Pmd:
    return Pmd(pmd.table, True)
