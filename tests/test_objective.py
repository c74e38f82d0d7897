"""The value function and losses: equal to their textbook forms, finite when D saturates."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

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


@pytest.mark.parametrize('r1_examples', [0, 3])
def test_r1_term_of_d_loss_equals_finite_differences_of_d(r1_examples):
  """`train.r1_gamma` adds γ/2·mean‖∇ₓD(x)‖² over the real minibatch (over its first
  `train.r1_examples`, when set) to D's loss; the reference differentiates D's logit by central
  differences (float64 arithmetic on D's outputs), not by the autodiff the step uses."""
  import dataclasses
  from configs import ring2d
  from gan_jax import experiment
  from gan_jax.validate import validate_config

  class TwoD:
    labels, shape = None, (2,)

    def __len__(self):
      return 1000

  c = ring2d.get_config()
  c.train.r1_gamma, c.train.r1_examples = 3.0, r1_examples
  validate_config(c)
  spec, state = experiment.build_models(c, TwoD())
  real = {'image': jnp.asarray(np.random.default_rng(0).normal(size=(8, 2)) * 2, jnp.float32)}
  key = jax.random.PRNGKey(1)
  with_r1, metrics = spec.game.d_loss(spec, state.d_params, state.g_params, real, key)
  plain = dataclasses.replace(spec, r1_gamma=0.0)
  without, _ = plain.game.d_loss(plain, state.d_params, state.g_params, real, key)

  d = jax.jit(lambda x: spec.d.apply(state.d_params, x, train=False))  # toy_mlp: no dropout
  x, eps = np.asarray(real['image'], np.float64), 1e-2
  grads = np.stack([(np.asarray(d(jnp.asarray(x + eps * e, jnp.float32)), np.float64)
                     - np.asarray(d(jnp.asarray(x - eps * e, jnp.float32)), np.float64)) / (2 * eps)
                    for e in np.eye(2)], axis=-1)
  expected = 0.5 * 3.0 * np.mean(np.sum(grads ** 2, axis=-1)[:r1_examples or None])
  assert expected > 0.01  # D is not flat here, so the term is not trivially 0
  np.testing.assert_allclose(float(with_r1 - without), expected, rtol=0.01)
  np.testing.assert_allclose(float(metrics['r1']), expected, rtol=0.01)


def test_hinge_losses_on_fixed_logits():
  """Lim & Ye's hinge, written out per logit: D pays 1 - l on data whose logit l is under the
  margin 1 and 1 + l on samples over -1, nothing past the margins; G pays -l."""
  real = jnp.array([2.0, 1.0, 0.5, -1.0])  # margin terms 0, 0, 0.5, 2
  fake = jnp.array([-3.0, -1.0, 0.0, 0.5])  # margin terms 0, 0, 1, 1.5
  np.testing.assert_allclose(objective.discriminator_loss_hinge(real, fake), 2.5 / 4 + 2.5 / 4, rtol=1e-6)
  np.testing.assert_allclose(objective.generator_loss_hinge(fake), 3.5 / 4, rtol=1e-6)
  # D's gradient is -1/n on data under the margin, +1/n on samples over it, 0 past the margins
  g_real, g_fake = jax.grad(objective.discriminator_loss_hinge, argnums=(0, 1))(real, fake)
  np.testing.assert_array_equal(g_real, [0.0, 0.0, -0.25, -0.25])
  np.testing.assert_array_equal(g_fake, [0.0, 0.0, 0.25, 0.25])
  np.testing.assert_array_equal(jax.grad(objective.generator_loss_hinge)(fake), [-0.25] * 4)


def test_hinge_config_reaches_the_players_losses():
  """train.d_loss=hinge and train.g_loss=hinge, through the config, are the losses the step
  differentiates: equal to the hinge of D's logits on the batch and on G(z) of the same key."""
  from configs import ring2d
  from gan_jax import experiment
  from gan_jax.games import players
  from gan_jax.validate import validate_config

  class TwoD:
    labels, shape = None, (2,)

    def __len__(self):
      return 1000

  c = ring2d.get_config()
  c.train.d_loss = c.train.g_loss = 'hinge'
  validate_config(c)
  spec, state = experiment.build_models(c, TwoD())
  real = {'image': jnp.asarray(np.random.default_rng(0).normal(size=(8, 2)) * 2, jnp.float32)}
  key = jax.random.PRNGKey(1)
  d_loss, _ = spec.game.d_loss(spec, state.d_params, state.g_params, real, key)
  g_loss, _ = spec.game.g_loss(spec, state.g_params, state.d_params, real, key)
  real_logits = np.asarray(spec.d.apply(state.d_params, real['image'], train=False), np.float64)
  fake_logits = np.asarray(players.fake_logits(spec, state.g_params, state.d_params, key, 8), np.float64)
  assert np.any(real_logits < 1) and np.any(fake_logits > -1)  # some terms inside the margins
  expected = np.mean(np.maximum(0.0, 1 - real_logits)) + np.mean(np.maximum(0.0, 1 + fake_logits))
  np.testing.assert_allclose(float(d_loss), expected, rtol=1e-5)
  np.testing.assert_allclose(float(g_loss), -np.mean(fake_logits), rtol=1e-5)
