"""§7 item 3 of the paper: every conditional p(x_S | x_rest) from one generator that shares its
parameters across the masks S.

G(z, m, m⊙x) fills in an image given a mask m (1: visible) and the visible pixels; the completion
m⊙x + (1 − m)⊙G(...) keeps what was seen. D judges (completion or data, m). Masks are drawn per
example from MASKS, so the same G completes a bottom half, a left half, a random half of the
pixels, or (all hidden) draws a whole new image, which is what evaluation samples for Parzen/FD.
"""
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import objective
from gan_jax.games import players
from gan_jax.games.paper import PaperGame

MASKS = ('all', 'bottom', 'top', 'left', 'right', 'random')  # the region hidden from G


def mask(kind, key, shape):
  """A float mask for one [H, W, C] image, 1 where G sees the pixel; `kind` an index into MASKS
  (traced: one compiled program draws any of them)."""
  h, w = shape[:2]
  rows, cols = jnp.arange(h)[:, None], jnp.arange(w)[None, :]
  # the random mask drawn flat: the same bits, and XLA:CPU compiles a draw over two axes (three
  # under the per-example vmap) 2.8x slower (benchmarks/draw_compile.py)
  visible = [jnp.zeros((h, w), bool), rows < h // 2, rows >= h // 2, cols >= w // 2, cols < w // 2,
             jax.random.bernoulli(key, 0.5, (h * w,)).reshape(h, w)]
  masks = jnp.stack([jnp.broadcast_to(v, (h, w)) for v in visible])
  return jnp.broadcast_to(masks[kind][..., None], shape).astype(jnp.float32)


def masks_of(kind: str, keys, shape):
  """One mask of the named kind per key (evaluation)."""
  index = MASKS.index(kind)
  return jax.vmap(lambda k: mask(index, k, shape))(keys)


def g_condition(m, x):
  return jnp.concatenate([m.reshape(len(m), -1), (m * x).reshape(len(m), -1)], axis=-1)


def complete(spec, g_params, x, m, z):
  """The completion of x seen through m: visible pixels kept, the rest G's."""
  return m * x + (1 - m) * spec.g.apply(g_params, z, None, g_condition(m, x))


class Inpainting(PaperGame):
  """G(z, m, m⊙x) and D(x, m); the paper's losses on completions."""

  def init(self, spec, g_key, d_key, data_shape, d_init_batch=None):  # its D does not initialise from data
    size = int(np.prod(data_shape))
    g_params = spec.g.init(g_key, jnp.zeros((1, spec.noise_dim)), None, jnp.zeros((1, 2 * size)))
    d_params = spec.d.init({'params': d_key}, jnp.zeros((1,) + tuple(data_shape)), None,
                           jnp.zeros((1, size)), train=False)
    return g_params, d_params

  def _fake_logits(self, spec, g_params, d_params, x, key):
    b, shape = x.shape[0], x.shape[1:]
    kinds = jax.vmap(lambda k: jax.random.randint(k, (), 0, len(MASKS)))(players.example_keys(spec, key, b, 4))
    m = jax.vmap(lambda i, k: mask(i, k, shape))(kinds, players.example_keys(spec, key, b, 5))
    z = players.noise(spec, players.example_keys(spec, key, b, 0))
    fake = complete(spec, g_params, x, m, z)
    logits = players.discriminate(spec, d_params, fake, players.example_keys(spec, key, b, 2), cond=m.reshape(b, -1))
    return logits, m

  def d_loss(self, spec, d_params, g_params, real, key):
    x = real['image']
    fake_logits, m = self._fake_logits(spec, g_params, d_params, x, key)
    # data is seen with the same masks the completions were made with, so the mask says nothing
    real_logits = players.discriminate(spec, d_params, x, players.example_keys(spec, key, x.shape[0], 1),
                                    cond=m.reshape(x.shape[0], -1))
    return objective.discriminator_loss(real_logits, fake_logits), players.logit_metrics(real_logits, fake_logits)

  def g_loss(self, spec, g_params, d_params, real, key):
    fake_logits, _ = self._fake_logits(spec, g_params, d_params, real['image'], key)
    return objective.GENERATOR_LOSSES[spec.g_loss](fake_logits), {}

  def sample(self, spec, g_params, z, labels):
    """A whole new image: everything hidden."""
    size = int(np.prod(spec.g.out_shape))
    return spec.g.apply(g_params, z, None, jnp.zeros((z.shape[0], 2 * size)))
