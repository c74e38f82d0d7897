"""DiffAugment (gan_jax/augment.py): each op against numpy on the same image, deterministic per
key, differentiable, and applied by D's call to data and samples alike."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import augment

IMAGE = np.random.default_rng(0).uniform(-1, 1, size=(16, 12, 3)).astype(np.float32)
KEYS = [jax.random.PRNGKey(i) for i in range(40)]


def shifted(x, dy, dx):
  """numpy: out[i, j] = x[i - dy, j - dx], zero outside."""
  out = np.zeros_like(x)
  h, w = x.shape[:2]
  for i in range(h):
    for j in range(w):
      if 0 <= i - dy < h and 0 <= j - dx < w:
        out[i, j] = x[i - dy, j - dx]
  return out


def test_translation_is_a_zero_filled_shift_of_up_to_an_eighth():
  seen = set()
  for key in KEYS:
    out = np.asarray(augment.translation(key, jnp.asarray(IMAGE)))
    matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if np.array_equal(out, shifted(IMAGE, dy, dx))]
    assert len(matches) == 1, matches  # 16 * 0.125 = 2 rows, 12 * 0.125 -> 2 columns at most
    seen.add(matches[0])
  assert len(seen) > 12  # the 25 shifts are drawn, not a few


def test_cutout_zeroes_one_square_of_half_the_side_clipped_at_the_border():
  sizes = set()
  for key in KEYS:
    out = np.asarray(augment.cutout(key, jnp.asarray(IMAGE)))
    zero = np.all(out == 0, axis=-1)
    np.testing.assert_array_equal(out[~zero], IMAGE[~zero])  # the rest untouched
    rows, cols = np.nonzero(zero)
    assert zero.sum() == (np.ptp(rows) + 1) * (np.ptp(cols) + 1)  # one axis-aligned rectangle
    assert np.ptp(rows) + 1 <= 8 and np.ptp(cols) + 1 <= 6
    sizes.add((np.ptp(rows) + 1, np.ptp(cols) + 1))
  assert (8, 6) in sizes and len(sizes) > 1  # whole inside, and clipped at a border


def test_color_is_brightness_saturation_and_contrast_in_their_ranges():
  for key in KEYS[:10]:
    out = np.asarray(augment.color(key, jnp.asarray(IMAGE)), np.float64)
    x = IMAGE.astype(np.float64)
    # out = c·(s·(x + b − m(x + b)) + m(x + b) − M) + M per pixel, m the pixel's channel mean, M the image mean
    xc = x - x.mean(axis=-1, keepdims=True)  # brightness cancels here
    oc = out - out.mean(axis=-1, keepdims=True)
    cs = float(np.sum(oc * xc) / np.sum(xc * xc))  # contrast × saturation
    np.testing.assert_allclose(oc, cs * xc, atol=1e-4)
    assert 0 <= cs <= 3.0
  gray = IMAGE[..., :1]
  for key in KEYS[:10]:  # one channel: an affine map a·x + b, the contrast a in [0.5, 1.5]
    out = np.asarray(augment.color(key, jnp.asarray(gray)), np.float64).ravel()
    a, b = np.polyfit(gray.ravel().astype(np.float64), out, 1)
    np.testing.assert_allclose(out, a * gray.ravel() + b, atol=1e-5)
    # out = a·(x − M) + M + brightness: the intercept less (1 − a)·M is the brightness, in ±0.5
    assert 0.5 <= a <= 1.5 and abs(b - (1 - a) * float(gray.mean())) <= 0.5


def test_deterministic_per_key_and_differentiable():
  ops = augment.parse('color,translation,cutout')
  x = jnp.asarray(IMAGE)
  a, b = augment.apply(ops, KEYS[0], x), augment.apply(ops, KEYS[0], x)
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, augment.apply(ops, KEYS[1], x))
  w = jnp.asarray(np.random.default_rng(1).normal(size=IMAGE.shape).astype(np.float32))
  f = lambda x: jnp.sum(augment.apply(ops, KEYS[3], x) * w)
  grad = jax.grad(f)(x)
  v = jnp.asarray(np.random.default_rng(2).normal(size=IMAGE.shape).astype(np.float32))
  eps = 1e-2
  numeric = (f(x + eps * v) - f(x - eps * v)) / (2 * eps)
  np.testing.assert_allclose(float(jnp.sum(grad * v)), float(numeric), rtol=2e-3)
  assert float(jnp.sum(grad != 0)) > 0.3 * grad.size  # the gradient reaches the pixels that were kept


def test_unknown_policy_is_one_line():
  with pytest.raises(ValueError, match="unknown augmentation 'flip'"):
    augment.parse('color, flip')
  assert augment.parse('') == () and augment.parse(' translation ,cutout') == ('translation', 'cutout')


def test_d_sees_data_and_samples_through_the_same_augmentation():
  """With train.augment, the logits the game's losses use are D's logits on each image after
  augment.apply with that example's key, for the data and for G's samples alike."""
  import dataclasses
  from configs import mnist_dcgan
  from gan_jax import experiment
  from gan_jax.games import players

  class Images:
    labels, shape = None, (28, 28, 1)

    def __len__(self):
      return 1000

  c = mnist_dcgan.get_config()
  c.model.g_kwargs.width = c.model.d_kwargs.width = 8
  c.train.augment = 'color,translation,cutout'
  spec, state = experiment.build_models(c, Images())
  x = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, size=(4, 28, 28, 1)).astype(np.float32))
  keys = players.example_keys(spec, jax.random.PRNGKey(5), 4, 1)
  plain = dataclasses.replace(spec, augment=())
  by_hand = jax.vmap(lambda xi, ki: augment.apply(spec.augment, jax.random.fold_in(ki, players.AUGMENT_SALT), xi))(x, keys)
  logits = players.discriminate(spec, state.d_params, x, keys)
  np.testing.assert_allclose(logits, players.discriminate(plain, state.d_params, by_hand, keys), rtol=1e-5, atol=1e-6)
  assert not np.allclose(logits, players.discriminate(plain, state.d_params, x, keys), atol=1e-4)
  # G's samples go through the same call (fake_logits), so through the same ops
  key = jax.random.PRNGKey(7)
  fake = players.generate(spec, state.g_params, players.example_keys(spec, key, 4, 0))
  fake_keys = players.example_keys(spec, key, 4, 2)
  fake_by_hand = jax.vmap(lambda xi, ki: augment.apply(spec.augment, jax.random.fold_in(ki, players.AUGMENT_SALT), xi))(fake, fake_keys)
  np.testing.assert_allclose(players.fake_logits(spec, state.g_params, state.d_params, key, 4),
                             players.discriminate(plain, state.d_params, fake_by_hand, fake_keys), rtol=1e-5, atol=1e-6)
