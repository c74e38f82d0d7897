"""How a game calls its players: one key per example from its global index (so noise and dropout
masks do not depend on how the batch is split over devices), z ~ p_z, G(z) and D(x) with their
optional conditions, and the means over the data-parallel devices."""
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import augment, models, objective
from gan_jax.models import sample_noise


def pmean(spec, tree):
  """The mean over the data-parallel devices (the identity on one, outside pmap)."""
  return jax.lax.pmean(tree, spec.axis_name) if spec.axis_name else tree


def example_keys(spec, key, batch_size, salt):
  """One key per example, from its global index: independent of how the batch is split."""
  first = jax.lax.axis_index(spec.axis_name) * batch_size if spec.axis_name else 0
  key = jax.random.fold_in(key, salt)
  return jax.vmap(lambda i: jax.random.fold_in(key, i))(first + jnp.arange(batch_size))


def noise(spec, z_keys):
  return jax.vmap(lambda k: sample_noise(k, (spec.noise_dim,), spec.noise))(z_keys)


def conditions(labels=None, cond=None) -> tuple:
  """The players' arguments after z or x: none for an unconditional game (so any module that
  takes one input is a player), else (labels,) or (labels, cond)."""
  return (labels, cond) if cond is not None else (labels,) if labels is not None else ()


def generate(spec, g_params, z_keys, labels=None, cond=None):
  return spec.g.apply(g_params, noise(spec, z_keys), *conditions(labels, cond))


AUGMENT_SALT = 1 << 20  # the augmentation's keys: a stream apart from the dropout masks'


EXAMPLES = 'examples'  # the per-example vmap's axis: a batch-normalised D reduces over it


def discriminate(spec, d_params, x, dropout_keys, labels=None, cond=None):
  """D's training-mode logits, each example with its own dropout mask and, with
  `spec.augment`, its own differentiable augmentation (the same ops for data and samples). A D
  that normalises by its batch (BiGAN's) takes the statistics over the examples of this call on
  every device: the real and the generated batch are normalised apart, as BiGAN's are."""
  d = models.with_batch_axis(spec.d, (EXAMPLES, spec.axis_name) if spec.axis_name else EXAMPLES)

  def one(xi, ki, yi, ci):
    add_axis = lambda a: None if a is None else a[None]
    if spec.augment:
      xi = augment.apply(spec.augment, jax.random.fold_in(ki, AUGMENT_SALT), xi)
    return d.apply(d_params, xi[None], *conditions(add_axis(yi), add_axis(ci)), train=True,
                   rngs={'dropout': ki})[0]
  return jax.vmap(one, axis_name=EXAMPLES)(x, dropout_keys, labels, cond)


def sample_labels(spec, n: int):
  """The classes a conditional G is asked for when sampling n images to evaluate: each in turn
  (0, 1, ..., C-1, 0, ...), so every class gets n/C; None for an unconditional G."""
  return np.arange(n, dtype=np.int32) % spec.num_classes if spec.num_classes else None


def fake_labels(spec, key, batch_size):
  """The classes G is asked for: uniform, one per example from its own key (None: unconditional)."""
  if not spec.num_classes:
    return None
  keys = example_keys(spec, key, batch_size, 3)
  return jax.vmap(lambda k: jax.random.randint(k, (), 0, spec.num_classes))(keys)


def fake_logits(spec, g_params, d_params, key, batch_size):
  z_keys, labels = example_keys(spec, key, batch_size, 0), fake_labels(spec, key, batch_size)
  fake = generate(spec, g_params, z_keys, labels)
  return discriminate(spec, d_params, fake, example_keys(spec, key, batch_size, 2), labels)


def logit_metrics(real_logits, fake_logits) -> dict:
  """V's minibatch estimate and D's mean outputs on data and samples."""
  return {'value': objective.value_function(real_logits, fake_logits),
          'd_real': jnp.mean(jax.nn.sigmoid(real_logits)), 'd_fake': jnp.mean(jax.nn.sigmoid(fake_logits))}
