"""vmsplice() into a pipe, and reading the pipe.

Mirrors fs/splice.c:vmsplice_to_pipe -> iter_to_pipe ->
lib/iov_iter.c:iov_iter_get_pages2 (v7.0): the user pages are taken with
get_user_pages_fast(addr, n, 0, pages) -- FOLL_GET, not FOLL_PIN, no
FOLL_WRITE, so no unsharing -- and the pipe holds the page references.
The data is copied only when the pipe is read (fs/pipe.c:pipe_read ->
user_page_pipe_buf_release drops the reference). This is the reference
behind CVE-2020-29374 and cow.c's vmsplice cases.
"""

from __future__ import annotations

from model.oracles.errors import UseAfterFree
from model.flags import EAGAIN, EFAULT


class PipeBuf:
    """struct pipe_buffer of a vmsplice'd user page."""

    __slots__ = ("folio", "va", "shared")

    def __init__(self, folio, va):
        self.folio = folio
        self.va = va
        self.shared = False     # ghost: the page came through a MAP_SHARED mapping

    def __repr__(self) -> str:
        return f"pipebuf({self.folio.name})"


class SpliceOps:
    """vmsplice and pipe reads."""

    async def vmsplice_to_pipe(self, proc, va: int) -> int:
        """fs/splice.c:vmsplice_to_pipe (v7.0), one page."""
        folio = await self.get_user_pages_fast(proc.mm, va, 0)
        if isinstance(folio, int):
            return -EFAULT
        proc.pipe.append(PipeBuf(folio, va))                   # add_to_pipe
        self.sched.log(proc, "pipe", len(proc.pipe) - 1, len(proc.pipe))
        return 0

    def pipe_read(self, proc):
        """fs/pipe.c:pipe_read (v7.0): copy the oldest buffer's page, release it.
        Returns (value, va, shared) or -EAGAIN."""
        if not proc.pipe:
            return -EAGAIN
        buf = proc.pipe.pop(0)
        self.sched.log(proc, "pipe", len(proc.pipe) + 1, len(proc.pipe))
        folio = buf.folio
        if folio.freed:
            raise UseAfterFree(f"pipe_read copies freed page {folio.name}", pfn=folio.pfn)
        data = folio.data
        self.folio_put(folio)                                   # user_page_pipe_buf_release
        return data, buf.va, buf.shared
