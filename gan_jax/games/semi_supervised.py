"""§7 item 4 of the paper, semi-supervised learning: D is a K-class classifier whose classes also
say "real" (Salimans et al. 2016, "Improved techniques for training GANs", §5): with logits l,
D(x) = Z/(Z + 1), Z = Σ exp(l), so the real-vs-sample logit is logsumexp(l). D learns from the
few labelled examples (cross-entropy, `batch['labelled_*']`, the whole labelled set at every
update) and from all the unlabelled ones (the GAN terms); G matches the mean of D's last hidden
features on data (feature matching), which Salimans et al. found to give the best classifier.

`train.unsupervised_weight=0` trains the same D on the labels alone: the baseline.
"""
import jax
import jax.numpy as jnp
import optax

from gan_jax.games import players
from gan_jax.games.paper import PaperGame


def class_logits(spec, d_params, x, keys):
  """D's K logits and its last hidden features, per example (its own dropout mask each)."""
  def one(xi, ki):
    logits, state = spec.d.apply(d_params, xi[None], train=True, rngs={'dropout': ki}, mutable=['intermediates'])
    return logits[0], state['intermediates']['features'][0][0]
  return jax.vmap(one)(x, keys)


class SemiSupervised(PaperGame):
  """The (K+1)-class game; `spec.unsupervised_weight` scales the unlabelled terms."""

  def _fake(self, spec, g_params, d_params, key, b):
    fake = players.generate(spec, g_params, players.example_keys(spec, key, b, 0))
    return class_logits(spec, d_params, fake, players.example_keys(spec, key, b, 2))

  def d_loss(self, spec, d_params, g_params, real, key):
    x, b = real['image'], real['image'].shape[0]
    logits, _ = class_logits(spec, d_params, x, players.example_keys(spec, key, b, 1))
    fake_logits, _ = self._fake(spec, g_params, d_params, key, b)
    lx, ly = real['labelled_image'], real['labelled_label']
    labelled, _ = class_logits(spec, d_params, lx, players.example_keys(spec, key, lx.shape[0], 6))
    supervised = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(labelled, ly))
    real_lse, fake_lse = jax.nn.logsumexp(logits, -1), jax.nn.logsumexp(fake_logits, -1)
    # -log D(x) = softplus(-lse), -log(1 - D(G(z))) = softplus(lse)
    unsupervised = jnp.mean(jax.nn.softplus(-real_lse)) + jnp.mean(jax.nn.softplus(fake_lse))
    loss = supervised + spec.unsupervised_weight * unsupervised
    return loss, {**players.logit_metrics(real_lse, fake_lse), 'supervised_loss': supervised,
                  'labelled_accuracy': jnp.mean(jnp.argmax(labelled, -1) == ly)}

  def g_loss(self, spec, g_params, d_params, real, key):
    x, b = real['image'], real['image'].shape[0]
    _, real_features = class_logits(spec, d_params, x, players.example_keys(spec, key, b, 1))
    _, fake_features = self._fake(spec, g_params, d_params, key, b)
    # The global batch's mean features on every device, not each device's own: the squared gap
    # of per-device means is not the gap of the batch's means, so N devices would train another G.
    mean = lambda f: players.pmean(spec, jnp.mean(f, 0))
    gap = jax.lax.stop_gradient(mean(real_features)) - mean(fake_features)
    return jnp.mean(gap ** 2), {}
