"""Kernel flag spellings: VM_*, FOLL_*, FAULT_FLAG_*, VM_FAULT_*, errno.

Values follow include/linux/mm.h and include/linux/mm_types.h (v6.x) where
the kernel defines them; only the bits the model uses are listed. Plain
ints, not enum.Flag: they are tested on the hot path of every execution.
"""

# -- vm_flags (include/linux/mm.h) --
VM_READ = 0x00000001
VM_WRITE = 0x00000002
VM_SHARED = 0x00000008
VM_MAYREAD = 0x00000010
VM_MAYWRITE = 0x00000020
VM_MAYSHARE = 0x00000080
VM_DONTCOPY = 0x00020000
VM_WIPEONFORK = 0x02000000
VM_SOFTDIRTY = 0x08000000

# -- gup_flags (include/linux/mm_types.h, enum) --
FOLL_WRITE = 1 << 0
FOLL_GET = 1 << 1
FOLL_DUMP = 1 << 2
FOLL_FORCE = 1 << 3
FOLL_NOWAIT = 1 << 4
FOLL_NOFAULT = 1 << 5
FOLL_HWPOISON = 1 << 6
FOLL_ANON = 1 << 7
FOLL_LONGTERM = 1 << 8
FOLL_SPLIT_PMD = 1 << 9
FOLL_PCI_P2PDMA = 1 << 10
FOLL_INTERRUPTIBLE = 1 << 11
FOLL_HONOR_NUMA_FAULT = 1 << 12
# mm/internal.h
FOLL_TOUCH = 1 << 16
FOLL_TRIED = 1 << 17
FOLL_REMOTE = 1 << 18
FOLL_PIN = 1 << 19
FOLL_FAST_ONLY = 1 << 20
FOLL_UNLOCKABLE = 1 << 21
FOLL_MADV_POPULATE = 1 << 22

# -- fault flags (include/linux/mm_types.h, enum fault_flag) --
FAULT_FLAG_WRITE = 1 << 0
FAULT_FLAG_MKWRITE = 1 << 1
FAULT_FLAG_ALLOW_RETRY = 1 << 2
FAULT_FLAG_RETRY_NOWAIT = 1 << 3
FAULT_FLAG_KILLABLE = 1 << 4
FAULT_FLAG_TRIED = 1 << 5
FAULT_FLAG_USER = 1 << 6
FAULT_FLAG_REMOTE = 1 << 7
FAULT_FLAG_INSTRUCTION = 1 << 8
FAULT_FLAG_INTERRUPTIBLE = 1 << 9
FAULT_FLAG_UNSHARE = 1 << 10
FAULT_FLAG_ORIG_PTE_VALID = 1 << 11
FAULT_FLAG_VMA_LOCK = 1 << 12

# -- vm_fault_t (include/linux/mm_types.h) --
VM_FAULT_OOM = 0x000001
VM_FAULT_SIGBUS = 0x000002
VM_FAULT_MAJOR = 0x000004
VM_FAULT_HWPOISON = 0x000010
VM_FAULT_SIGSEGV = 0x000040
VM_FAULT_NOPAGE = 0x000100
VM_FAULT_LOCKED = 0x000200
VM_FAULT_RETRY = 0x000400
VM_FAULT_COMPLETED = 0x004000
VM_FAULT_ERROR = VM_FAULT_OOM | VM_FAULT_SIGBUS | VM_FAULT_SIGSEGV | VM_FAULT_HWPOISON

# -- errno (include/uapi/asm-generic/errno-base.h) --
EPERM = 1
ESRCH = 3
EIO = 5
EAGAIN = 11
ENOMEM = 12
EFAULT = 14
EBUSY = 16
EEXIST = 17
EINVAL = 22
ENOSPC = 28
EMLINK = 31


def is_cow_mapping(vm_flags: int) -> bool:
    """include/linux/mm.h:is_cow_mapping (v6.x)."""
    return (vm_flags & (VM_SHARED | VM_MAYWRITE)) == VM_MAYWRITE
