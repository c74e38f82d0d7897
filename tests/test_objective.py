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
  np.testing.assert_allclose(objective.discriminator_loss(real, fake), -v, rtol=1e-6)
  np.testing.assert_allclose(objective.generator_loss_minimax(fake), np.mean(np.log(1 - d_f)), rtol=1e-6)
  np.testing.assert_allclose(objective.generator_loss_non_saturating(fake), -np.mean(np.log(d_f)), rtol=1e-6)


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
