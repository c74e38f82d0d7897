"""grain's global shuffle, computed for a whole array of positions at once.

grain's `MapDataset.shuffle` maps each position alone through its C++ `index_shuffle` (a 4-round
Simon cipher, cycle-walking into [0, max_index]), ~13 µs a call: for a 256-example step that is
3 ms, more than a toy model's whole step. grain has no batched form, so this is the same cipher
in numpy, bit for bit (tests/test_input_pipeline.py compares it with grain's own over many sizes
and seeds): `permutation` draws an epoch's order whole, `index_shuffle` any positions.
"""
import functools
import math

import numpy as np

_M32 = 0xFFFFFFFF
ROUNDS = 4  # what grain's MapDataset.shuffle asks for


@functools.lru_cache(maxsize=64)
def round_keys(seed: int) -> tuple[int, ...]:
  """std::seed_seq{seed}.generate(ROUNDS keys): grain's key schedule, as C++ specifies
  seed_seq's generate ([rand.util.seedseq])."""
  n, v = ROUNDS, [seed & _M32]
  s = len(v)
  t = 11 if n >= 623 else 7 if n >= 68 else 5 if n >= 39 else 3 if n >= 7 else (n - 1) // 2
  p, m = (n - t) // 2, max(s + 1, n)
  q = p + t
  b = [0x8B8B8B8B] * n
  mix = lambda x: x ^ (x >> 27)
  for k in range(m):
    r1 = (1664525 * mix(b[k % n] ^ b[(k + p) % n] ^ b[(k - 1) % n])) & _M32
    r2 = (r1 + (s if k == 0 else (k % n + v[k - 1] if k <= s else k % n))) & _M32
    b[(k + p) % n] = (b[(k + p) % n] + r1) & _M32
    b[(k + q) % n] = (b[(k + q) % n] + r2) & _M32
    b[k % n] = r2
  for k in range(m, m + n):
    r3 = (1566083941 * mix((b[k % n] + b[(k + p) % n] + b[(k - 1) % n]) & _M32)) & _M32
    r4 = (r3 - k % n) & _M32
    b[(k + p) % n] ^= r3
    b[(k + q) % n] ^= r4
    b[k % n] = r4
  return tuple(b)


def _word_bits(max_index: int) -> int:
  block = math.ceil(math.log2(max_index))  # grain's block size, in the same double arithmetic
  return max(block + block % 2, 16) // 2


def _encrypt(v, w: int, seed: int):
  """grain's Simon cipher on 2w-bit blocks (uint64 array); bits above 2w are dropped, as its
  std::bitset<w> words drop them."""
  u = np.uint64
  mask = u((1 << w) - 1)
  keys = [u(k) & mask for k in round_keys(seed)]
  shifts = [(u(r), u(w - r)) for r in (1, 8, 2)]

  def f(x):  # Simon's round function on w-bit words: (x <<< 1 & x <<< 8) ^ x <<< 2
    a, b, c = (((x << left) | (x >> right)) & mask for left, right in shifts)
    return (a & b) ^ c

  left, right = (v >> u(w)) & mask, v & mask
  for i in range(0, len(keys), 2):
    left ^= f(right) ^ keys[i]
    right ^= f(left) ^ keys[i + 1]
  return (left << u(w)) | right


def index_shuffle(index, max_index: int, seed: int) -> np.ndarray:
  """Where grain's `index_shuffle(i, max_index, seed, rounds=4)` sends each i in `index` (an int
  array with values in [0, max_index], max_index > 0), as int64. Cycle-walks each position, as grain does: for
  max_index far below grain's 2^16-value minimum block that takes many passes (`permutation`)."""
  out = np.asarray(index, np.uint64).copy()
  w, top = _word_bits(max_index), np.uint64(max_index)
  flat, todo = out.reshape(-1), np.arange(out.size)
  while todo.size:  # encrypt again until the value lands in [0, max_index]
    v = _encrypt(flat[todo], w, seed)
    flat[todo] = v
    todo = todo[v > top]
  return out.astype(np.int64)


def permutation(n: int, seed: int) -> np.ndarray:
  """[index_shuffle(i, n - 1, seed) for i in range(n)]: the cipher once over its whole block,
  then each value's landing point in [0, n) by pointer doubling, so a small n costs no more than
  grain's 2^16-value minimum block."""
  if n == 1:
    return np.zeros(1, np.int64)
  w, top = _word_bits(n - 1), np.uint64(n - 1)
  block = np.arange(1 << (2 * w), dtype=np.uint64)
  encrypted = _encrypt(block, w, seed)
  landing = np.where(block <= top, block, encrypted)  # after 2^t doublings: 2^t steps of the walk
  for _ in range(2 * w):
    landing = landing[landing]
  return landing[encrypted[np.arange(n) & ((1 << (2 * w)) - 1)]].astype(np.int64)
