"""madvise() behaviours that change VMA flags: MADV_DONTFORK, MADV_DOFORK,
MADV_WIPEONFORK, MADV_KEEPONFORK.

Mirrors mm/madvise.c (v7.0): do_madvise takes mmap_lock for write for these
behaviours (madvise_lock, MADVISE_MMAP_WRITE_LOCK), madvise_walk_vmas visits
every VMA of the range (a hole makes the call return -ENOMEM after the
rest is done) and madvise_vma_behavior computes the new flags; then
madvise_update_vma splits the VMA to the range (vma_modify_flags) and
write-locks it before changing vm_flags. fork reads them in dup_mmap
(model/fork.py): VM_DONTCOPY VMAs are not copied, VM_WIPEONFORK ones get an
empty VMA in the child.

MADV_DONTNEED (model/zap.py) and MADV_PAGEOUT (model/vmscan.py) live with
the paths they drive.
"""

from __future__ import annotations

from model.flags import EINVAL, ENOMEM, VM_DONTCOPY, VM_SHARED, VM_WIPEONFORK
from model.pgtable import USER_PAGES

MADV_DONTFORK = "MADV_DONTFORK"
MADV_DOFORK = "MADV_DOFORK"
MADV_WIPEONFORK = "MADV_WIPEONFORK"
MADV_KEEPONFORK = "MADV_KEEPONFORK"


class MadviseOps:
    """mm/madvise.c, the VMA-flag behaviours."""

    async def madvise_vma_flags(self, mm, start: int, npages: int, behavior: str) -> int:
        """mm/madvise.c:do_madvise (v7.0) for a behaviour that updates VMA flags."""
        end = start + npages
        if npages <= 0 or start < 0 or end > USER_PAGES:
            return -EINVAL
        await self.mmap_write_lock(mm, "madvise_lock:mmap_write_lock_killable")
        ret = 0
        hole = self.range_has_hole(mm, start, end)
        for vma in [v for v in mm.vmas if v.vm_start < end and start < v.vm_end]:
            # madvise_walk_vmas: each VMA overlapping the range, clamped to it
            s, e = max(start, vma.vm_start), min(end, vma.vm_end)
            ret = await self.madvise_vma_behavior(mm, vma, s, e, behavior)
            if ret:
                break
        if not ret and hole:
            ret = -ENOMEM                                          # unmapped_error
        self.mmap_write_unlock(mm)
        return ret

    async def madvise_vma_behavior(self, mm, vma, start: int, end: int, behavior: str) -> int:
        """mm/madvise.c:madvise_vma_behavior (v7.0), the fork behaviours: the new flags,
        checked before anything is split."""
        new_flags = vma.vm_flags
        if behavior == MADV_DONTFORK:
            new_flags |= VM_DONTCOPY
        elif behavior == MADV_DOFORK:
            new_flags &= ~VM_DONTCOPY                              # (VM_IO: not modelled)
        elif behavior == MADV_WIPEONFORK:
            # MADV_WIPEONFORK is only supported on anonymous memory.
            if vma.vm_file is not None or new_flags & VM_SHARED:
                return -EINVAL
            new_flags |= VM_WIPEONFORK
        elif behavior == MADV_KEEPONFORK:
            new_flags &= ~VM_WIPEONFORK
        else:
            return -EINVAL
        return await self.madvise_update_vma(mm, vma, start, end, new_flags)

    async def madvise_update_vma(self, mm, vma, start: int, end: int, new_flags: int) -> int:
        """mm/madvise.c:madvise_update_vma (v7.0): nothing to do if the flags are the same;
        else split the VMA to the range (vma_modify_flags), write-lock it, set the flags."""
        if new_flags == vma.vm_flags:
            return 0
        for part in await self.vmas_in_range(mm, start, end):
            await self.vma_start_write(part)
            self.sched.log_at(mm, "vma.vm_flags", part.vm_start, part.vm_flags, new_flags)
            part.vm_flags = new_flags
        return 0
