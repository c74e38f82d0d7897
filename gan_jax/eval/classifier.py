"""A small convnet on the real training images, the stand-in for Inception on MNIST-like data.

Its penultimate features give a Fréchet distance between generated and test images, its softmax
the "inception score" and the class coverage. Trained once, cached (msgpack) at the path the
config names, and reloaded from there.
"""
import functools
import os
import time

from absl import logging
import flax.linen as nn
from flax import serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan_jax.models.layers import conv_lecun_normal


def max_pool_2x2(x):
  """nn.max_pool(x, (2, 2), (2, 2)) on NHWC `x` of even height and width, as a max over reshaped
  axes: the same values, and on CPU a gradient XLA runs in half the time of max_pool's
  select-and-scatter (the classifier's training step: 110 ms against 185 on one core, batch 128)."""
  n, h, w, c = x.shape
  return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


class Classifier(nn.Module):
  num_classes: int = 10

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = max_pool_2x2(nn.relu(nn.Conv(32, (3, 3), kernel_init=conv_lecun_normal())(x)))
    x = max_pool_2x2(nn.relu(nn.Conv(64, (3, 3), kernel_init=conv_lecun_normal())(x)))
    features = nn.relu(nn.Dense(128)(x.reshape(x.shape[0], -1)))
    h = nn.Dropout(0.3, deterministic=not train)(features)
    return nn.Dense(self.num_classes)(h), features


def _make_train_step(tx):
  @functools.partial(jax.jit, donate_argnums=(0, 1))
  def train_step(params, opt_state, images, labels, key):
    def loss_fn(p):
      logits, _ = Classifier().apply(p, images, train=True, rngs={'dropout': key})
      return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    grads = jax.grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state
  return train_step


@jax.jit
def predict(params, images):
  """(softmax probabilities, penultimate features)."""
  logits, features = Classifier().apply(params, images)
  return jax.nn.softmax(logits), features


def batched_predict(params, images, batch: int = 1000):
  probs, feats = zip(*(predict(params, jnp.asarray(images[i:i + batch])) for i in range(0, len(images), batch)))
  return np.concatenate(probs), np.concatenate(feats)


def accuracy_of(probs, labels) -> float:
  return float(np.mean(probs.argmax(1) == labels))


def accuracy(params, images, labels) -> float:
  return accuracy_of(batched_predict(params, images)[0], labels)


def train(images, labels, epochs: int = 4, batch: int = 128, seed: int = 0):
  # jitted: one program, where eager init compiles each random initialiser alone (3.6 s against 1.7)
  params = jax.jit(lambda key: Classifier().init(key, jnp.zeros((1,) + images.shape[1:])))(jax.random.PRNGKey(seed))
  steps_per_epoch = len(images) // batch
  tx = optax.adam(optax.cosine_decay_schedule(2e-3, epochs * steps_per_epoch))
  opt_state = tx.init(params)
  train_step = _make_train_step(tx)
  rng = np.random.default_rng(seed)
  total, start = epochs * steps_per_epoch, time.monotonic()
  last = start
  for epoch in range(epochs):
    perm = rng.permutation(len(images))
    for i in range(steps_per_epoch):
      idx = perm[i * batch:(i + 1) * batch]
      params, opt_state = train_step(params, opt_state, jnp.asarray(images[idx]), jnp.asarray(labels[idx]),
                                      jax.random.PRNGKey(epoch * 100000 + i))
      done = epoch * steps_per_epoch + i + 1
      if time.monotonic() - last > 30 and done < total:  # the time left, as this machine runs it
        jax.block_until_ready(params)
        last = time.monotonic()
        rate = done / (last - start)
        logging.info('Classifier: step %d/%d (epoch %d/%d), %.1f steps/s, ~%.1f min left.', done, total,
                     epoch + 1, epochs, rate, (total - done) / rate / 60)
    logging.info('Classifier epoch %d/%d done.', epoch + 1, epochs)
  return params


def minutes_to_train(epochs: int, examples: int) -> tuple:
  """About how long `train` takes on 2 CPU cores, on a fast and on a slow CPU (measured: ~0.3 min
  an epoch of 60,000 images on an AVX-512 VM, ~1.4 min on a 2.0 GHz AVX2 one)."""
  epochs_of_60k = epochs * examples / 60_000
  return 0.3 * epochs_of_60k, 1.4 * epochs_of_60k


def load_or_train(path: str, load_train, test_images, test_labels, epochs: int = 4,
                  min_accuracy: float = 0.99):
  """The cached classifier at `path`, trained (and saved there) on first use. `load_train()`
  returns (images, labels) and is called only when there is no cached classifier."""
  # only the structure: the cached file fills it (no initialisation to compile and run)
  template = jax.eval_shape(lambda: Classifier().init(jax.random.PRNGKey(0), jnp.zeros((1,) + test_images.shape[1:])))
  if os.path.exists(path):
    with open(path, 'rb') as f:
      return serialization.from_bytes(template, f.read())
  images, labels = load_train()
  logging.info('This first evaluation trains the evaluation classifier once before it scores (%d epochs '
               'on %d images, ~%.1f-%.1f min on 2 CPU cores, by the CPU); cached at %s for every later '
               'one.', epochs, len(images), *minutes_to_train(epochs, len(images)), path)
  params = train(images, labels, epochs=epochs)
  acc = accuracy(params, test_images, test_labels)
  logging.info('Evaluation classifier test accuracy: %.4f', acc)
  if acc < min_accuracy:
    logging.warning('The evaluation classifier reached only %.4f test accuracy (< %.2f): its '
                    'metrics are less reliable. More classifier epochs help.', acc, min_accuracy)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path + '.tmp', 'wb') as f:
    f.write(serialization.to_bytes(params))
  os.replace(path + '.tmp', path)
  return params
