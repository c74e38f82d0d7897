"""Differentiable augmentation (Zhao et al. 2020, DiffAugment): D sees every image, real or
generated, through the same random colour, translation and cutout, and G's gradient flows back
through them. On a small dataset this keeps D from memorising the training images.

One image ([H, W, C]) and one key at a time; `players.discriminate` maps it over the batch with
each example's own key, so the draws do not depend on how the batch is split over devices. The
ops follow the reference implementation (DiffAugment_pytorch.py): brightness + U(-0.5, 0.5),
saturation × U(0, 2), contrast × U(0.5, 1.5); a zero-filled shift of up to 1/8 of each side;
a zeroed square of half the side at a uniform position, clipped at the border.
"""
import jax
import jax.numpy as jnp

POLICIES = ('color', 'translation', 'cutout')


def parse(policy: str) -> tuple:
  """'color,translation,cutout' (any subset, in any order; '' for none) as a tuple of op names."""
  ops = tuple(p.strip() for p in (policy or '').split(',') if p.strip())
  unknown = [p for p in ops if p not in POLICIES]
  if unknown:
    raise ValueError(f'unknown augmentation {unknown[0]!r}; choose a comma-separated subset of {POLICIES}')
  return ops


def color(key, x):
  kb, ks, kc = jax.random.split(key, 3)
  x = x + (jax.random.uniform(kb) - 0.5)
  if x.shape[-1] > 1:  # saturation is a no-op on one channel; the reference draws it anyway
    mean = jnp.mean(x, axis=-1, keepdims=True)
    x = (x - mean) * (jax.random.uniform(ks) * 2) + mean
  mean = jnp.mean(x)
  return (x - mean) * (jax.random.uniform(kc) + 0.5) + mean


def translation(key, x, ratio=0.125):
  h, w = x.shape[:2]
  sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
  ky, kx = jax.random.split(key)
  dy = jax.random.randint(ky, (), -sh, sh + 1)
  dx = jax.random.randint(kx, (), -sw, sw + 1)
  padded = jnp.pad(x, ((sh, sh), (sw, sw), (0, 0)))
  # out[i, j] = x[i - dy, j - dx], zero where that falls outside
  return jax.lax.dynamic_slice(padded, (sh - dy, sw - dx, 0), x.shape)


def cutout(key, x, ratio=0.5):
  h, w = x.shape[:2]
  ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
  ky, kx = jax.random.split(key)
  cy = jax.random.randint(ky, (), 0, h + (1 - ch % 2))
  cx = jax.random.randint(kx, (), 0, w + (1 - cw % 2))
  rows = jnp.arange(h)[:, None] - (cy - ch // 2)
  cols = jnp.arange(w)[None, :] - (cx - cw // 2)
  inside = (rows >= 0) & (rows < ch) & (cols >= 0) & (cols < cw)
  return x * (~inside)[..., None].astype(x.dtype)


OPS = {'color': color, 'translation': translation, 'cutout': cutout}


def apply(ops: tuple, key, x):
  """x ([H, W, C]) through each op in turn, each with its own key from `key`."""
  for i, name in enumerate(ops):
    x = OPS[name](jax.random.fold_in(key, i), x)
  return x
