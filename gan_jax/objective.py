"""The value function of Eq. 1, the players' losses, and the theory's analytic quantities.

Everything takes D's logits, never probabilities: log D = log σ(l) and log(1 - D) = log σ(-l)
are computed as log-sigmoids, exact and finite however saturated D is.
"""
import jax
import jax.numpy as jnp
import optax


def value_function(d_real_logits, d_fake_logits, real_weights=None, fake_weights=None):
  """V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))].

  A minibatch estimate by default; with weights (probabilities of each point), the exact
  expectation over a discrete support.
  """
  return (jnp.average(jax.nn.log_sigmoid(d_real_logits), weights=real_weights)
          + jnp.average(jax.nn.log_sigmoid(-d_fake_logits), weights=fake_weights))


def discriminator_loss(d_real_logits, d_fake_logits):
  """D ascends V, i.e. descends -V/2: the mean of the cross-entropies with label 1 on data and 0
  on samples. Halved as the released code's `AdversaryCost2` (d_obj = 0.5 * (cost(real) +
  cost(fake))): with SGD the scale is D's learning rate, so the sum would train D twice as fast."""
  return 0.5 * (jnp.mean(optax.sigmoid_binary_cross_entropy(d_real_logits, jnp.ones_like(d_real_logits)))
                + jnp.mean(optax.sigmoid_binary_cross_entropy(d_fake_logits, jnp.zeros_like(d_fake_logits))))


def generator_loss_minimax(d_fake_logits, weights=None):
  """G descends E_z[log(1 - D(G(z)))], the paper's Eq. 1 as written. Saturates early on."""
  return jnp.average(jax.nn.log_sigmoid(-d_fake_logits), weights=weights)


def generator_loss_non_saturating(d_fake_logits, weights=None):
  """G ascends E_z[log D(G(z))] instead (Sec. 3): same fixed point, strong early gradients."""
  return -jnp.average(jax.nn.log_sigmoid(d_fake_logits), weights=weights)


def r1_penalty(real_input_grads, gamma):
  """R1 (Mescheder et al. 2018): γ/2 · E_x‖∇ₓ D(x)‖², D's logit's input gradient on data, one row
  of `real_input_grads` per example. Pulls D flat on the data, which damps the players' rotation
  around the equilibrium. Added to the halved loss above, so a γ here weighs what 2γ weighs
  beside the summed loss of the R1 paper."""
  per_example = jnp.sum(jnp.reshape(real_input_grads, (real_input_grads.shape[0], -1)) ** 2, axis=-1)
  return 0.5 * gamma * jnp.mean(per_example)


def discriminator_loss_hinge(d_real_logits, d_fake_logits):
  """The hinge loss (Lim & Ye 2017; Miyato et al. 2018's spectrally normalised GANs):
  E_x[max(0, 1 - D(x))] + E_z[max(0, 1 + D(G(z)))] on D's logits. D stops pushing a point once
  its logit is past the margin, so a D that tells the sets apart stops growing its logits."""
  return jnp.mean(jax.nn.relu(1.0 - d_real_logits)) + jnp.mean(jax.nn.relu(1.0 + d_fake_logits))


def generator_loss_hinge(d_fake_logits, weights=None):
  """G's half of the hinge game: descends -E_z[D(G(z))], the logit itself, unbounded."""
  return -jnp.average(d_fake_logits, weights=weights)


GENERATOR_LOSSES = {'minimax': generator_loss_minimax, 'non_saturating': generator_loss_non_saturating,
                    'hinge': generator_loss_hinge}
DISCRIMINATOR_LOSSES = {'cross_entropy': discriminator_loss, 'hinge': discriminator_loss_hinge}


def _normalise(p):
  return p / jnp.sum(p)


def optimal_discriminator(p_data, p_g):
  """Proposition 1: D*(x) = p_data(x) / (p_data(x) + p_g(x)); 1/2 where both vanish."""
  total = p_data + p_g
  return jnp.where(total > 0, p_data / jnp.where(total > 0, total, 1.0), 0.5)


def _xlogy_ratio(p, q):
  # p * log(p / q) with 0 log 0 = 0
  return jnp.where(p > 0, p * (jnp.log(jnp.where(p > 0, p, 1.0)) - jnp.log(jnp.where(q > 0, q, 1.0))), 0.0)


def jensen_shannon(p_data, p_g):
  """JSD(p_data ‖ p_g) in nats for two distributions on the same discrete support or grid.

  Inputs are normalised to sum to one, so unnormalised densities on a uniform grid work too.
  """
  p, q = _normalise(p_data), _normalise(p_g)
  m = 0.5 * (p + q)
  return 0.5 * jnp.sum(_xlogy_ratio(p, m)) + 0.5 * jnp.sum(_xlogy_ratio(q, m))


def virtual_criterion(p_data, p_g):
  """C(G) = max_D V(G, D) = E_data[log D*] + E_g[log(1 - D*)] (Theorem 1), on a discrete support.

  Written as Σ p log(p / (p + q)) + Σ q log(q / (p + q)): forming D* first would round
  1 - D* to 0 in float32 wherever p_g is tiny but not zero.
  """
  p, q = _normalise(p_data), _normalise(p_g)
  return jnp.sum(_xlogy_ratio(p, p + q)) + jnp.sum(_xlogy_ratio(q, p + q))
