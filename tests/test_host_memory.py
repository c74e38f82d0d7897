"""host_memory.keep_freed_memory: a dispatch whose scratch buffer is larger than a malloc arena's
heap (100 MB) reuses the memory freed by the one before, instead of faulting it in anew."""
import subprocess
import sys

from tests.conftest import ROOT

# Minor page faults per dispatch (the median of dispatches 11-20) of a step whose 100 MB
# intermediate (max(a @ b, 0.5), 8192 × 3072) XLA cannot fuse away: with a @ b's inner dimension
# 8 and a max (not 64 and a tanh), the same buffer and faults in a third of the time on one core.
# Kept memory needs a few dispatches to settle: the heap grows until it holds as many scratch
# buffers as are ever live at once (a dispatch's buffer may be freed after the next one's is
# allocated). Each mode needs its own process: mallopt is process-wide.
PROBE = r'''
import resource, sys
from gan_jax import host_memory
if sys.argv[1] == 'keep':
  assert host_memory.keep_freed_memory()
import jax, jax.numpy as jnp
a, b = jnp.ones((8192, 8)), jnp.ones((8, 3072))
f = jax.jit(lambda a, b: jnp.maximum(a @ b, 0.5) @ b.T)
print(f.lower(a, b).compile().memory_analysis().temp_size_in_bytes)
faults = []
for _ in range(20):
  r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  f(a, b).block_until_ready()
  faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0)
print(sorted(faults[10:])[5])
'''


def faults_per_dispatch(mode):
  r = subprocess.run([sys.executable, '-c', PROBE, mode], cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert r.returncode == 0, r.stderr
  temp_bytes, faults = r.stdout.split()
  return int(temp_bytes), int(faults)


def test_kept_memory_is_not_faulted_in_again_at_each_dispatch():
  temp_bytes, returned = faults_per_dispatch('default')
  pages = temp_bytes / 4096
  assert temp_bytes > 64 << 20  # above a thread arena's heap: only the single arena keeps it
  # glibc's default: the scratch buffer is mmapped and unmapped at every dispatch
  assert returned > 0.5 * pages, (returned, pages)
  _, kept = faults_per_dispatch('keep')
  assert kept < 0.01 * pages, (kept, pages)
