"""The value function and losses: equal to their textbook forms, finite when D saturates."""
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import objective


def test_losses_match_probability_forms():
  real = jnp.array([-2.0, 0.3, 1.5])
  fake = jnp.array([-1.0, 0.0, 2.0])
  d_r, d_f = jax.nn.sigmoid(real), jax.nn.sigmoid(fake)
  v = np.mean(np.log(d_r)) + np.mean(np.log(1 - d_f))
  np.testing.assert_allclose(objective.value_function(real, fake), v, rtol=1e-6)
  np.testing.assert_allclose(objective.discriminator_loss(real, fake), -v / 2, rtol=1e-6)
  np.testing.assert_allclose(objective.generator_loss_minimax(fake), np.mean(np.log(1 - d_f)), rtol=1e-6)
  np.testing.assert_allclose(objective.generator_loss_non_saturating(fake), -np.mean(np.log(d_f)), rtol=1e-6)


def test_losses_equal_the_released_adversary_cost2():
  """goodfeli/adversarial's AdversaryCost2 on fixed logits, in float64 by hand: pylearn2's
  Sigmoid.cost(Y, Y_hat) is the batch mean of -[Y log Ŷ + (1 - Y) log(1 - Ŷ)];
  d_obj = 0.5 * (cost(1, D(x)) + cost(0, D(G(z)))), g_obj = cost(1, D(G(z)))."""
  real = np.array([-3.0, -0.4, 0.0, 0.7, 2.5, 6.0])
  fake = np.array([-5.0, -1.2, 0.1, 0.9, 1.7, 3.0])

  def cost(y, logits):
    p = 1.0 / (1.0 + np.exp(-logits))
    return np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p)))

  d_obj = 0.5 * (cost(1.0, real) + cost(0.0, fake))
  g_obj = cost(1.0, fake)
  np.testing.assert_allclose(objective.discriminator_loss(jnp.asarray(real), jnp.asarray(fake)), d_obj, rtol=1e-6)
  np.testing.assert_allclose(objective.generator_loss_non_saturating(jnp.asarray(fake)), g_obj, rtol=1e-6)


def test_finite_values_and_gradients_at_saturated_d():
  for logit in (-200.0, 200.0):
    x = jnp.full((4,), logit)
    for fn in (lambda l: objective.discriminator_loss(l, l), objective.generator_loss_minimax,
               objective.generator_loss_non_saturating):
      value, grad = jax.value_and_grad(fn)(x)
      assert np.isfinite(value) and np.all(np.isfinite(grad))
  # where D rejects samples confidently, the non-saturating loss still pushes G
  g = jax.grad(objective.generator_loss_non_saturating)(jnp.full((1,), -30.0))
  assert abs(float(g[0])) > 0.99
