"""§7 item 2 of the paper, learned approximate inference: an encoder E(x) trained with G against a
D that sees pairs, (x, E(x)) from data against (G(z), z) from the generator (BiGAN, Donahue et al.
2017; ALI, Dumoulin et al. 2017). At the game's optimum E inverts G.

The generator player is the pytree {'g': G's parameters, 'e': E's}: one optimizer, one moving
average, one checkpoint entry, the same step. D's loss is the paper's (halved, as the released
code); the generator player's is non-saturating on both terms, their mean
(-log D(G(z), z) - log(1 - D(x, E(x))))/2, as BiGAN's.
"""
import jax
import jax.numpy as jnp
import optax

from gan_jax import objective
from gan_jax.games import players
from gan_jax.games.paper import PaperGame


def encode(spec, e_params, x):
  return spec.e.apply(e_params, x)


class BiGAN(PaperGame):

  def init(self, spec, g_key, d_key, data_shape, d_init_batch=None):  # its D does not initialise from data
    g_key, e_key = jax.random.split(g_key)
    z = jnp.zeros((1, spec.noise_dim))
    x = jnp.zeros((1,) + tuple(data_shape))
    g_and_e = {'g': spec.g.init(g_key, z), 'e': spec.e.init(e_key, x)}
    return g_and_e, spec.d.init({'params': d_key}, x, None, z, train=False)

  def _logits(self, spec, g_and_e, d_params, x, key):
    b = x.shape[0]
    z = players.noise(spec, players.example_keys(spec, key, b, 0))
    fake = spec.g.apply(g_and_e['g'], z)
    fake_logits = players.discriminate(spec, d_params, fake, players.example_keys(spec, key, b, 2), cond=z)
    real_logits = players.discriminate(spec, d_params, x, players.example_keys(spec, key, b, 1),
                                    cond=encode(spec, g_and_e['e'], x))
    return real_logits, fake_logits

  def d_loss(self, spec, d_params, g_and_e, real, key):
    real_logits, fake_logits = self._logits(spec, g_and_e, d_params, real['image'], key)
    return objective.discriminator_loss(real_logits, fake_logits), players.logit_metrics(real_logits, fake_logits)

  def g_loss(self, spec, g_and_e, d_params, real, key):
    real_logits, fake_logits = self._logits(spec, g_and_e, d_params, real['image'], key)
    fool = objective.GENERATOR_LOSSES[spec.g_loss]
    # G wants D(G(z), z) called data; E wants D(x, E(x)) called a sample (labels swapped); the
    # mean of the two terms, as BiGAN's (train_gan.py:440-464: each weighted 1/2)
    e_loss = jnp.mean(optax.sigmoid_binary_cross_entropy(real_logits, jnp.zeros_like(real_logits)))
    return (fool(fake_logits) + e_loss) / 2, {'e_loss': e_loss}

  def sample(self, spec, g_and_e, z, labels):
    return spec.g.apply(g_and_e['g'], z)

  def generator_params(self, g_and_e):
    return g_and_e['g']
