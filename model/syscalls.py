"""User-visible operations: what a thread of a test program can do.

Each ``op_<name>`` method is the operation ``<name>`` of a program (the
operation table, fuzz/program/ops.py, lists them) executed by a model
thread: a user load or store, a system call, a driver ioctl (GUP pins as
cow.c's gup_test module and io_uring take them), a device access through a
pin, or a user-space event. Results are
values, 0, -errno, or a signal name; they go into the trace.

Also here: process exit (do_exit: exit_mm, then exit_files, which releases
the process's pins and pipe), and fork's process side.
"""

from __future__ import annotations

from model.oracles.errors import UseAfterFree
from model.flags import (EBUSY, EEXIST, EINVAL, ENOMEM, EPERM, ESRCH, FOLL_LONGTERM, FOLL_PIN,
                         FOLL_WRITE)
from model.gup import Pin
from model.locks import UserEvent
from model.madvise import MADV_DOFORK, MADV_DONTFORK, MADV_WIPEONFORK
from model.page import ANON


class Syscalls:
    """The operations a program's threads perform."""

    @staticmethod
    def _private_view(vma, folio) -> bool:
        """Is a store into ``folio`` a private write? By the mapping when there is one;
        through a stale TLB entry after munmap, a page-cache page was mapped shared."""
        if vma is not None:
            return not vma.is_shared()
        return folio.kind != "file"

    def _ctx(self, proc, va=None) -> None:
        self.sched.current.ctx = (proc.mm.mid, va) if va is not None else (proc.mm.mid,)

    # -- memory accesses -----------------------------------------------------------
    async def op_read(self, thread, va: int):
        proc = thread.process
        self._ctx(proc, va)
        folio = await self.user_access(thread, va, False, "user:load")
        if isinstance(folio, str):
            return folio
        data = folio.data
        vma = proc.mm.find_vma(va)
        if vma is not None:
            self.spec.check_load(proc, va, data, vma)
        return data

    async def op_write(self, thread, va: int):
        proc = thread.process
        self._ctx(proc, va)
        folio = await self.user_access(thread, va, True, "user:store")
        if isinstance(folio, str):
            return folio
        vma = proc.mm.find_vma(va)
        token = self.spec.new_token(proc.pid if self._private_view(vma, folio) else None, va,
                                    "store")
        self.sched.log(folio, "data", folio.data, token)
        folio.data = token
        if vma is not None:
            self.spec.value_written(proc, va, token, vma)
            self.spec.check_store(proc, va, token)
        return token

    # -- mappings ------------------------------------------------------------------
    async def op_mmap(self, thread, va: int, npages: int, kind: str, prot: str, pgoff: int = 0):
        proc = thread.process
        mm = proc.mm
        self._ctx(proc, va)
        await self.mmap_write_lock(mm, "do_mmap:mmap_write_lock_killable")
        ret = await self.do_mmap(mm, va, npages, kind, prot, self.files.get("f"), pgoff)
        self.mmap_write_unlock(mm)
        return ret

    async def op_munmap(self, thread, va: int, npages: int):
        proc = thread.process
        self._ctx(proc, va)
        began = self.tlb_promise_begin(proc.mm)
        await self.mmap_write_lock(proc.mm, "__vm_munmap:mmap_write_lock_killable")
        ret = await self.do_munmap(proc.mm, va, npages)
        if ret == 0:
            self.tlb_promise_end(proc.mm, va, va + npages, began, "munmap")
        return ret

    async def op_mprotect(self, thread, va: int, npages: int, prot: str):
        proc = thread.process
        self._ctx(proc, va)
        began = self.tlb_promise_begin(proc.mm)
        ret = await self.do_mprotect(proc.mm, va, npages, prot)
        if ret == 0 and "w" not in prot:
            # taking write permission away: no CPU may write the range any more
            self.tlb_promise_end(proc.mm, va, va + npages, began, "mprotect")
        return ret

    async def op_dontneed(self, thread, va: int, npages: int):
        proc = thread.process
        self._ctx(proc, va)
        began = self.tlb_promise_begin(proc.mm)
        ret = await self.madvise_dontneed(proc.mm, va, npages)
        if ret == 0:
            self.tlb_promise_end(proc.mm, va, va + npages, began, "MADV_DONTNEED")
        return ret

    async def op_mremap(self, thread, va: int, npages: int, new_va: int):
        """mremap(va, npages, npages, MREMAP_MAYMOVE | MREMAP_FIXED, new_va)."""
        proc = thread.process
        self._ctx(proc, va)
        began = self.tlb_promise_begin(proc.mm)
        ret = await self.do_mremap(proc.mm, va, npages, new_va)
        if ret >= 0:
            self.tlb_promise_end(proc.mm, va, va + npages, began, "mremap")
        return ret

    async def op_dontfork(self, thread, va: int, npages: int):
        proc = thread.process
        self._ctx(proc, va)
        return await self.madvise_vma_flags(proc.mm, va, npages, MADV_DONTFORK)

    async def op_dofork(self, thread, va: int, npages: int):
        proc = thread.process
        self._ctx(proc, va)
        return await self.madvise_vma_flags(proc.mm, va, npages, MADV_DOFORK)

    async def op_wipeonfork(self, thread, va: int, npages: int):
        proc = thread.process
        self._ctx(proc, va)
        return await self.madvise_vma_flags(proc.mm, va, npages, MADV_WIPEONFORK)

    async def op_pageout(self, thread, va: int, npages: int):
        proc = thread.process
        self._ctx(proc, va)
        return await self.madvise_pageout(proc.mm, va, npages)

    async def op_reclaim(self, thread, va: int):
        proc = thread.process
        self._ctx(proc, va)
        return await self.reclaim_folio_at(proc.mm, va)

    async def op_clear_refs(self, thread):
        proc = thread.process
        self._ctx(proc)
        return await self.clear_refs_soft_dirty(proc.mm)

    async def op_procmem(self, thread, pid: int, va: int):
        """write(open("/proc/<pid>/mem"), ...) at ``va``."""
        proc = thread.process
        target = self.process_by_pid(pid)
        self._ctx(proc, va)
        if target is None:
            return -ESRCH
        task = self.sched.current
        self.pending_kernel_store[task] = (target, self.spec.unmap_mark(target, va))
        ret = await self.mem_rw_write(target, va)
        del self.pending_kernel_store[task]
        return ret

    def kernel_store_value(self, mm, addr: int, vma, folio) -> int:
        """The value a /proc/pid/mem write stores into the GUP'd page (ghost bookkeeping:
        the kernel path only writes what it is given)."""
        target, mark = self.pending_kernel_store[self.sched.current]
        token = self.spec.new_token(target.pid if self._private_view(vma, folio) else None,
                                    addr, "proc_mem")
        if vma is None or target.mm is not mm:
            return token
        if self.spec.still_mapped_since(target, addr, mark):
            self.spec.value_written(target, addr, token, vma)
        else:
            # the target unmapped the address meanwhile: the GUP'd page may be gone
            self.spec.value_maybe_written(target, addr, folio)
        return token

    # -- pins and devices ------------------------------------------------------------
    async def op_pin(self, thread, slot: int, va: int, write: bool, fast: bool, longterm: bool):
        """A driver pins one page: pin_user_pages_fast() or, as cow.c's gup_test does,
        pin_user_pages() under mmap_read_lock."""
        proc = thread.process
        mm = proc.mm
        self._ctx(proc, va)
        if slot in proc.pins or slot in proc.pinning:
            return -EBUSY
        proc.pinning.add(slot)
        mark = self.spec.unmap_mark(proc, va)
        flags = (FOLL_WRITE if write else 0) | (FOLL_LONGTERM if longterm else 0)
        if fast:
            folio = await self.pin_user_pages_fast(mm, va, flags)
        else:
            await mm.mmap_lock.down_read(self.sched, "pin_longterm_test_start:mmap_read_lock")
            folio = await self.pin_user_pages(mm, va, flags)
            mm.mmap_lock.up_read(self.sched)
        proc.pinning.discard(slot)
        if isinstance(folio, int):
            return folio
        # unmapped by the process while the pin was being taken (GUP-fast holds no
        # mmap_lock): the pin holds the old mapping's page, and the VMA now at va --
        # possibly a new mmap -- says nothing about it
        mapped = self.spec.still_mapped_since(proc, va, mark)
        vma = mm.find_vma(va) if mapped else None
        if write:
            self.check_foll_write_target(mm, vma, va, folio, "FOLL_WRITE pin")
        coherent = bool(longterm) or folio.kind == ANON or (vma is not None and vma.is_shared())
        pin = Pin(proc, slot, va, folio, flags | FOLL_PIN, coherent)
        pin.associated = mapped                  # no coherence promise after an unmap
        pin.shared = not self._private_view(vma, folio)
        proc.pins[slot] = pin
        self.sched.log_at(proc, "pin", slot, None, folio.name)
        return folio.name

    async def op_unpin(self, thread, slot: int):
        proc = thread.process
        self._ctx(proc)
        await self.sched.point("unpin_user_page")
        pin = proc.pins.pop(slot, None)
        if pin is None:
            return -EINVAL
        self.sched.log_at(proc, "pin", slot, pin.folio.name, None)
        self.unpin_user_page(pin.folio)
        return 0

    async def op_devread(self, thread, slot: int):
        """The device reads the pinned page (gup_test's PIN_LONGTERM_TEST_READ, an
        io_uring write_fixed)."""
        proc = thread.process
        self._ctx(proc)
        await self.sched.point("device:dma_read")
        pin = proc.pins.get(slot)
        if pin is None:
            return -EINVAL
        self.sched.current.ctx = (proc.mm.mid, pin.va)
        if pin.folio.freed:
            raise UseAfterFree(f"device reads freed page {pin.folio.name} through pin #{slot}",
                               pfn=pin.folio.pfn)
        data = pin.folio.data
        self.spec.check_device_read(pin, data)
        return data

    async def op_devwrite(self, thread, slot: int):
        """The device writes the pinned page (a direct-I/O read into the buffer)."""
        proc = thread.process
        self._ctx(proc)
        await self.sched.point("device:dma_write")
        pin = proc.pins.get(slot)
        if pin is None:
            return -EINVAL
        if not pin.write:
            return -EPERM
        folio = pin.folio
        self.sched.current.ctx = (proc.mm.mid, pin.va)
        if folio.freed:
            raise UseAfterFree(f"device writes freed page {folio.name} through pin #{slot}",
                               pfn=folio.pfn)
        vma = proc.mm.find_vma(pin.va)
        token = self.spec.new_token(None if pin.shared else proc.pid, pin.va, "device",
                                    self.spec.moved_page_vas(proc, pin.va, folio))
        self.sched.log(folio, "data", folio.data, token)
        folio.data = token
        # block/bio.c:bio_set_pages_dirty (v7.0): a DMA read into user pages dirties
        # them, or reclaim would drop the written page as clean
        self.folio_mark_dirty(folio)
        if pin.associated and vma is not None and not proc.mm.dead:
            self.spec.value_written(proc, pin.va, token, vma)
        else:
            # no promise: the process may or may not see this write at pin.va
            self.spec.value_maybe_written(proc, pin.va, folio)
        return token

    # -- vmsplice ------------------------------------------------------------------
    async def op_vmsplice(self, thread, va: int):
        proc = thread.process
        self._ctx(proc, va)
        vma = proc.mm.find_vma(va)
        shared = vma is not None and vma.is_shared()
        n = len(proc.pipe)
        ret = await self.vmsplice_to_pipe(proc, va)
        if ret == 0 and len(proc.pipe) > n:
            proc.pipe[-1].shared = shared
        return ret

    async def op_piperead(self, thread):
        proc = thread.process
        self._ctx(proc)
        await self.sched.point("pipe_read")
        ret = self.pipe_read(proc)
        if isinstance(ret, int):
            return ret
        data, va, shared = ret
        self.spec.check_pipe_read(proc, va, data, shared)
        return data

    # -- user-space synchronisation -------------------------------------------------
    def event(self, n: int) -> UserEvent:
        ev = self.events.get(n)
        if ev is None:
            ev = self.events[n] = UserEvent(f"exit({n[1]})" if isinstance(n, tuple) else f"event{n}")
        return ev

    async def op_signal(self, thread, n: int):
        self._ctx(thread.process)
        await self.sched.point("user:signal")
        self.event(n).signal(self.sched)
        return 0

    async def op_wait(self, thread, n: int):
        self._ctx(thread.process)
        await self.event(n).wait(self.sched, "user:wait")
        return 0

    def exit_event(self, pid: int) -> UserEvent:
        return self.event(("exit", pid))

    async def op_waitpid(self, thread, pid: int):
        """wait4(pid): until process ``pid`` has exited (its mm and files are gone)."""
        self._ctx(thread.process)
        await self.exit_event(pid).wait(self.sched, "user:waitpid")
        return 0

    # -- processes ---------------------------------------------------------------------
    def process_by_pid(self, pid: int):
        for p in self.processes:
            if p.pid == pid and not p.mm.dead:
                return p
        return None

    async def op_fork(self, thread, child_pid: int):
        """kernel/fork.c:copy_process -> copy_mm -> dup_mm (v7.0). Returns the child."""
        parent = thread.process
        self._ctx(parent)
        await self.sched.point("copy_process")
        if any(p.pid == child_pid for p in self.processes) or child_pid in self.forking:
            return -EEXIST
        if self.sched.should_fail("dup_mm:allocate_mm"):
            return -ENOMEM
        key = self.sched.current
        self.forking[child_pid] = key
        mm = self.new_mm()
        ret = await self.dup_mmap(mm, parent.mm)
        del self.forking[child_pid]
        if ret:
            mm.dead = True
            self.spec.fork_failed(parent, key)
            return ret
        child = self.create_process(parent, mm, child_pid)
        self.spec.fork_end(parent, child, key)
        return child

    def fork_locked_parent(self, oldmm) -> None:
        """Ghost hook: dup_mmap holds the parent's mmap_lock, the fork window opens."""
        self.spec.fork_begin(oldmm.owner, self.sched.current)

    async def op_exit(self, thread):
        """exit_group(): the process's other threads stop at their next operation."""
        proc = thread.process
        self._ctx(proc)
        await self.sched.point("do_group_exit")
        if not proc.exiting:
            proc.exiting = True
            self.sched.log(proc, "exiting", False, True)
        return 0

    async def thread_exit(self, thread) -> None:
        """kernel/exit.c:do_exit for one thread; the last one tears the process down."""
        proc = thread.process
        mm = proc.mm
        self._ctx(proc)
        self.lost_writes_task_done(proc)              # ghost: its stores are all in memory
        if thread.tlb:
            self.sched.log(thread, "tlb", dict(thread.tlb), {})
            thread.tlb.clear()
        mm.threads.remove(thread)
        proc.live_threads -= 1
        await self.mmput(mm)                                   # exit_mm
        if proc.live_threads == 0:
            await self.exit_files(proc)

    async def mmput(self, mm) -> None:
        """kernel/fork.c:mmput (v7.0): the last user runs exit_mmap."""
        mm.mm_users -= 1
        if mm.mm_users == 0:
            await self.exit_mmap(mm)

    async def exit_files(self, proc) -> None:
        """kernel/exit.c:exit_files: closing the gup_test / io_uring files unpins, and the
        pipe releases its pages."""
        await self.sched.point("exit_files")
        for slot in sorted(proc.pins):
            pin = proc.pins.pop(slot)
            self.sched.log_at(proc, "pin", slot, pin.folio.name, None)
            self.unpin_user_page(pin.folio)
        while proc.pipe:
            buf = proc.pipe.pop(0)
            self.folio_put(buf.folio)
        self.exit_event(proc.pid).signal(self.sched)
