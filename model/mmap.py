"""VMAs: mmap, VMA splitting, mmap_lock and the per-VMA locks (v6.4+).

Mirrors mm/mmap.c, mm/vma.c, mm/mmap_lock.c and include/linux/mmap_lock.h
(v7.0). The per-VMA lock protocol: a VMA is write-locked when its
``vm_lock_seq`` equals the mm's ``mm_lock_seq`` (which mmap_write_lock makes
odd and mmap_write_unlock bumps again, releasing every VMA write lock at
once); vma_start_write first waits for the VMA's readers to leave; page
faults try vma_start_read and fall back to mmap_lock when it fails.

Adjacent VMAs are never merged (vma_merge is an optimisation); a VMA is
split when an operation covers only part of it.
"""

from __future__ import annotations

from model.flags import (EEXIST, EINVAL, VM_MAYREAD, VM_MAYSHARE, VM_MAYWRITE, VM_READ, VM_SHARED,
                         VM_SOFTDIRTY, VM_WRITE)
from model.mm import VmArea
from model.pgtable import USER_PAGES

ANON_PRIVATE = "anon"
FILE_PRIVATE = "file"
FILE_SHARED = "shared"
KINDS = (ANON_PRIVATE, FILE_PRIVATE, FILE_SHARED)


def prot_to_vm_flags(prot: str) -> int:
    flags = 0
    if "r" in prot:
        flags |= VM_READ
    if "w" in prot:
        flags |= VM_WRITE
    return flags


class MmapOps:
    """mmap_lock, per-VMA locks and VMA bookkeeping."""

    # -- mmap_lock (include/linux/mmap_lock.h, v7.0) ----------------------------
    async def mmap_write_lock(self, mm, label: str) -> None:
        await mm.mmap_lock.down_write(self.sched, label)
        self.sched.log(mm, "mm_lock_seq", mm.mm_lock_seq, mm.mm_lock_seq + 1)
        mm.mm_lock_seq += 1           # mm_lock_seqcount_begin

    def mmap_write_unlock(self, mm) -> None:
        """mmap_write_unlock -> vma_end_write_all: every VMA write lock is released."""
        self.sched.log(mm, "mm_lock_seq", mm.mm_lock_seq, mm.mm_lock_seq + 1)
        mm.mm_lock_seq += 1           # mm_lock_seqcount_end
        mm.mmap_lock.up_write(self.sched)

    def mmap_write_downgrade(self, mm) -> None:
        """mmap_write_downgrade: release VMA write locks, keep mmap_lock for read."""
        self.sched.log(mm, "mm_lock_seq", mm.mm_lock_seq, mm.mm_lock_seq + 1)
        mm.mm_lock_seq += 1
        lock = mm.mmap_lock
        cur = self.sched.current
        lock.writer = None
        lock.readers.append(cur)
        self.sched.log(lock, "writer", cur.name, None)
        self.sched.wake_all(lock)

    # -- per-VMA locks (mm/mmap_lock.c, v7.0) ---------------------------------
    def vma_is_write_locked(self, vma) -> bool:
        return vma.vm_lock_seq == vma.vm_mm.mm_lock_seq

    def vma_start_read(self, mm, vma) -> bool:
        """mm/mmap_lock.c:vma_start_read (v7.0): fails if write-locked or a writer waits."""
        if self.vma_is_write_locked(vma) or vma.vm_lock.writers_waiting:
            return False
        return vma.vm_lock.down_read_trylock(self.sched)

    def vma_end_read(self, vma) -> None:
        vma.vm_lock.up_read(self.sched)

    async def vma_start_write(self, vma) -> None:
        """mm/mmap_lock.c:__vma_start_write (v7.0): exclude readers, then mark locked.
        The caller holds mmap_lock for write."""
        if self.vma_is_write_locked(vma):
            return
        lock = vma.vm_lock
        lock.writers_waiting += 1
        while lock.readers:
            await self.sched.wait(lock, "__vma_start_write:wait_for_readers")
        lock.writers_waiting -= 1
        self.sched.log_at(vma.vm_mm, "vma.vm_lock_seq", vma.vm_start, vma.vm_lock_seq,
                          vma.vm_mm.mm_lock_seq)
        vma.vm_lock_seq = vma.vm_mm.mm_lock_seq

    async def lock_vma_under_rcu(self, mm, addr: int):
        """mm/mmap_lock.c:lock_vma_under_rcu (v7.0): the VMA read-locked, or None."""
        await self.sched.point("lock_vma_under_rcu:vma_start_read")
        vma = mm.find_vma(addr)
        if vma is None:
            return None
        if not self.vma_start_read(mm, vma):
            return None
        return vma

    # -- VMA bookkeeping (mm/vma.c, v7.0) ---------------------------------------
    def _new_vma(self, mm, start: int, end: int, flags: int, file, pgoff: int) -> VmArea:
        vma = VmArea(mm, start, end, flags, file, pgoff)
        return vma

    async def rmap_link_lock(self, vma, label: str) -> None:
        """Linking ``vma`` into the rmap (anon_vma_clone, anon_vma_fork, vma_link_file)
        takes the anon_vma / i_mmap lock for write, so a walk under way finishes first.
        Like vma_start_write, this waits only while the lock is held: the link itself is
        one step, with no scheduling point of its own."""
        lock = self.rmap_lock
        if not (vma.anon_vma or vma.vm_file) or (lock.writer is None and not lock.readers):
            return
        lock.writers_waiting += 1
        while lock.writer is not None or lock.readers:
            await self.sched.wait(lock, label)
        lock.writers_waiting -= 1
        self.sched.wake_all(lock)        # up_write: readers that queued behind the link go on

    def range_has_hole(self, mm, start: int, end: int) -> bool:
        """Some page of [start, end) is in no VMA: madvise_walk_vmas's unmapped_error."""
        mapped = sum(max(0, min(end, v.vm_end) - max(start, v.vm_start)) for v in mm.vmas)
        return mapped < end - start

    def note_link_order(self, vma) -> None:
        """The order VMAs are linked into the rmap: the walk's tie-break after vm_pgoff."""
        vma.vid = self.next_vid
        self.next_vid += 1

    def insert_vma(self, mm, vma) -> None:
        self.note_link_order(vma)
        mm.vmas.append(vma)
        mm.vmas.sort(key=lambda v: v.vm_start)
        self.sched.log_at(mm, "vma", (vma.vm_start, vma.vm_end), None, vma.vm_flags)

    def remove_vma(self, mm, vma) -> None:
        mm.vmas.remove(vma)
        self.sched.log_at(mm, "vma", (vma.vm_start, vma.vm_end), vma.vm_flags, None)

    async def split_vma(self, mm, vma, addr: int):
        """mm/vma.c:__split_vma (v7.0): [start, addr) stays, [addr, end) is new."""
        await self.vma_start_write(vma)
        new = self._new_vma(mm, addr, vma.vm_end, vma.vm_flags, vma.vm_file,
                            vma.vm_pgoff + (addr - vma.vm_start))
        new.anon_vma = vma.anon_vma
        new.vm_lock_seq = vma.vm_lock_seq
        await self.rmap_link_lock(new, "__split_vma:anon_vma_clone")
        self.sched.log_at(mm, "vma", (vma.vm_start, vma.vm_end), vma.vm_flags, "split")
        vma.vm_end = addr
        self.note_link_order(new)                # anon_vma_clone links it after the old
        mm.vmas.append(new)
        mm.vmas.sort(key=lambda v: v.vm_start)
        return new

    async def vmas_in_range(self, mm, start: int, end: int) -> list:
        """The VMAs overlapping [start, end), split so that each lies inside it."""
        out = []
        for vma in list(mm.vmas):
            if vma.vm_end <= start or vma.vm_start >= end:
                continue
            if vma.vm_start < start:
                vma = await self.split_vma(mm, vma, start)
            if vma.vm_end > end:
                await self.split_vma(mm, vma, end)
            out.append(vma)
        return out

    async def do_mmap(self, mm, addr: int, npages: int, kind: str, prot: str,
                      file=None, pgoff: int = 0) -> int:
        """mm/mmap.c:do_mmap with MAP_FIXED_NOREPLACE (v7.0). Caller holds mmap_lock (write)."""
        end = addr + npages
        if npages <= 0 or addr < 0 or end > USER_PAGES or kind not in {ANON_PRIVATE, FILE_PRIVATE,
                                                                      FILE_SHARED}:
            return -EINVAL
        if kind != ANON_PRIVATE and (file is None or pgoff + npages > len(file.pages)):
            return -EINVAL
        for vma in mm.vmas:
            if vma.vm_start < end and addr < vma.vm_end:
                return -EEXIST
        flags = prot_to_vm_flags(prot) | VM_MAYREAD | VM_MAYWRITE | VM_SOFTDIRTY
        if kind == FILE_SHARED:
            flags |= VM_SHARED | VM_MAYSHARE
        if kind == ANON_PRIVATE:
            pgoff = addr                 # do_mmap: MAP_PRIVATE anon, pgoff = addr >> PAGE_SHIFT
        vma = self._new_vma(mm, addr, end, flags, None if kind == ANON_PRIVATE else file, pgoff)
        await self.rmap_link_lock(vma, "vma_link:vma_link_file")
        self.insert_vma(mm, vma)
        proc = mm.owner
        for va in range(addr, end):
            self.spec.view_reset(proc, va, vma)
        return 0
