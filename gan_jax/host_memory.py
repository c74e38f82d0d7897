"""Keep freed host memory in the process for reuse, so that a CPU step does not fault it in anew.

XLA:CPU allocates each dispatch's scratch buffer (every intermediate of the step: 30 MB for
configs/mnist_dcgan.py, 95 MB for configs/cifar10.py) with malloc and frees it when the dispatch
ends. glibc serves blocks that large with mmap and returns them with munmap, so every dispatch
page-faults and zeroes its whole scratch buffer again: ~8,200 page faults and ~24 ms of kernel time
per mnist_dcgan step measured on a 2-core VM, ~18% of the step (benchmarks/host_memory.py). This
is why a dispatch of 10 steps (train.steps_per_call) ran 34-43% faster than 10 dispatches of one:
the scratch buffer is allocated once per dispatch.

glibc's malloc, told to (mallopt), keeps such blocks instead: no mmap for large blocks, no trimming
of the heap's free top, and one arena, since a thread arena's heap holds at most 64 MB and a larger
block would fall back to mmap anyway. The process then keeps its high-water mark of host memory
until it exits, which a training run reaches in its first steps anyway. jemalloc or tcmalloc
(LD_PRELOAD) are the usual remedy elsewhere; jemalloc 5.3 with its defaults still faulted every
step here, and neither is installed by pip.
"""
import ctypes
import platform

# glibc's malloc.h
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8
_KEEP = ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2 ** 31 - 1))
# glibc's defaults, to undo _KEEP (for measuring both ways in one process). The trim threshold's
# default is dynamic; 128 KiB is where it starts.
_RETURN = ((_M_MMAP_MAX, 65536), (_M_TRIM_THRESHOLD, 128 * 1024))


def _mallopt(settings) -> bool:
  if platform.system() != 'Linux' or platform.libc_ver()[0] != 'glibc':
    return False
  libc = ctypes.CDLL(None)  # the malloc this process runs on
  return all(libc.mallopt(option, value) == 1 for option, value in settings)


def keep_freed_memory() -> bool:
  """Make glibc's malloc keep freed memory for reuse (see the module's docstring). True if set;
  False where the C library is not glibc (nothing changes there).

  Call it before JAX starts its CPU backend: each thread picks its malloc arena at its first
  allocation, and XLA's threads must pick the one arena."""
  return _mallopt(_KEEP)


def return_freed_memory() -> bool:
  """glibc's default again for large blocks (mmap, trimming): undoes keep_freed_memory except for
  the single arena, which threads that already have one keep."""
  return _mallopt(_RETURN)
