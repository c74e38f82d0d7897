"""configs/mnist.py's schedules against their closed forms, read back from the optimizer state
that training uses: the learning rate divided by 1.000004 per update and floored at 1e-6 (as
mnist.yaml's ExponentialDecay), momentum 0.5 → 0.7 linearly between epochs 1 and 250 (mnist.yaml's
MomentumAdjustor), set once per epoch; and pylearn2's momentum rule, v <- μv - lr·g, θ <- θ + v."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import default, mnist
from gan_jax.optim import make_optimizer

UPDATES_PER_EPOCH = 500  # 50,000 training images / batch 100


def closed_form_lr(t):
  return max(0.1 / 1.000004 ** t, 1e-6)


def closed_form_momentum(t):
  # MomentumAdjustor(start=1, saturate=250): its count is e during epoch e (counted from 1)
  epoch = t // UPDATES_PER_EPOCH + 1
  return 0.5 + 0.2 * min(max((epoch - 1) / (250 - 1), 0.0), 1.0)


@pytest.mark.parametrize('t', [0, 1, 499, 500, 501, 999, 1000, 10_000, 62_250, 124_499, 124_500, 125_000, 2_000_000, 5_000_000])
def test_schedules_follow_the_released_recipe(t):
  cfg = mnist.get_config().optim.d
  tx = make_optimizer(cfg, UPDATES_PER_EPOCH)
  params = {'w': jnp.zeros(3)}
  state = tx.init(params)
  # each schedule keeps its own update count (optax's WrappedScheduleState); an update evaluates
  # it there and stores the value beside
  counts = {k: v._replace(count=jnp.asarray(t, jnp.int32)) for k, v in state.hyperparams_states.items()}
  _, state = tx.update({'w': jnp.zeros(3)}, state._replace(hyperparams_states=counts), params)
  assert float(state.hyperparams['learning_rate']) == pytest.approx(closed_form_lr(t), rel=1e-5)
  assert float(state.hyperparams['momentum']) == pytest.approx(closed_form_momentum(t), abs=1e-6)


@pytest.mark.parametrize('t', [0, 1, 3999, 4000, 4001, 6000, 50_000])
def test_lr_decay_begins_at_its_start(t):
  """Adam at 2e-3 held for 4,000 updates, then divided by 1.0002 per update, floored at 1e-5."""
  cfg = default.adam(2e-3)
  cfg.lr_decay, cfg.lr_decay_start, cfg.min_lr = 1.0002, 4000, 1e-5
  tx = make_optimizer(cfg, UPDATES_PER_EPOCH)
  params = {'w': jnp.zeros(3)}
  state = tx.init(params)
  counts = {k: v._replace(count=jnp.asarray(t, jnp.int32)) for k, v in state.hyperparams_states.items()}
  _, state = tx.update({'w': jnp.zeros(3)}, state._replace(hyperparams_states=counts), params)
  expected = max(2e-3 / 1.0002 ** max(t - 4000, 0), 1e-5)
  assert float(state.hyperparams['learning_rate']) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize('lr_decay', [1.000004, 1.5])
def test_sgd_step_is_pylearn2s_momentum_rule(lr_decay):
  """With a fast decay (1.5) the rule's form matters: optax.sgd's v <- μv + g, θ <- θ - lr·v
  would differ from pylearn2's by tens of percent after three updates."""
  cfg = mnist.get_config().optim.g
  cfg.lr_decay = lr_decay
  cfg.momentum_saturate = 3
  tx = make_optimizer(cfg, 2)  # 2 updates per epoch: the momentum moves during the test
  params, grad = {'w': jnp.ones(2)}, {'w': jnp.array([1.0, -2.0])}
  state = tx.init(params)
  velocity, w = np.zeros(2), np.ones(2)
  for t in range(6):
    updates, state = tx.update(grad, state, params)
    params = optax.apply_updates(params, updates)
    epoch = t // 2 + 1
    momentum = 0.5 + 0.2 * min(max((epoch - 1) / (3 - 1), 0.0), 1.0)
    velocity = momentum * velocity - max(0.1 / lr_decay ** t, 1e-6) * np.asarray(grad['w'])
    w = w + velocity
  np.testing.assert_allclose(np.asarray(params['w']), w, rtol=1e-6)


def test_adam_with_eps_inside_the_root_is_salimans_adam_updates():
  """configs/mnist_semi_supervised.py's Adam against improved-gan's nn.adam_updates written out
  in numpy: m̂ / √(v̂ + 1e-8), with bias correction, for a few steps of varying gradients,
  including a parameter whose gradient is always zero (a frozen scale: it must not move)."""
  from configs import mnist_semi_supervised
  cfg = mnist_semi_supervised.get_config().optim.d
  tx = make_optimizer(cfg, 600)
  params = {'w': jnp.array([0.5, -1.0, 2.0]), 'frozen': jnp.array([1.0, 3.0])}
  state = tx.init(params)
  p = {k: np.asarray(v, np.float64) for k, v in params.items()}
  m = {k: np.zeros_like(v) for k, v in p.items()}
  v = {k: np.zeros_like(v) for k, v in p.items()}
  rng = np.random.default_rng(0)
  for t in range(1, 6):
    # gradients near 1e-4, where ε inside the root (√(v̂ + 1e-8)) differs from outside it (√v̂ + ε)
    grads = {'w': rng.normal(size=3) * 1e-4 * t, 'frozen': np.zeros(2)}
    updates, state = tx.update(jax.tree.map(jnp.float32, grads), state, params)
    params = optax.apply_updates(params, updates)
    for k in p:  # theirs: mom1 0.5, mom2 0.999, lr 0.003
      m[k] = 0.5 * m[k] + 0.5 * grads[k]
      v[k] = 0.999 * v[k] + 0.001 * grads[k] ** 2
      p[k] = p[k] - 0.003 * (m[k] / (1 - 0.5 ** t)) / np.sqrt(v[k] / (1 - 0.999 ** t) + 1e-8)
    np.testing.assert_allclose(params['w'], p['w'], rtol=1e-5)
    np.testing.assert_array_equal(params['frozen'], [1.0, 3.0])


def test_bigan_schedule_and_l2_penalty_are_the_anchors():
  """configs/mnist_bigan.py's optimiser against BiGAN's set_lr (train_gan.py:812-831): 2e-4 for
  epochs 0-199, then 2e-4·0.01^((e-199)/200) through epoch 399 (391 updates an epoch), constant
  within an epoch; and the L2 penalty 2.5e-5·θ added to the gradient before Adam's moments."""
  from configs import mnist_bigan
  from gan_jax.optim import learning_rate_schedule
  cfg = mnist_bigan.get_config().optim.d
  lr = learning_rate_schedule(cfg)
  for epoch in (0, 198, 199, 200, 201, 300, 399):
    want = 2e-4 if epoch < 200 else 2e-4 * 0.01 ** ((epoch - 199) / 200)
    for update in (epoch * 391, epoch * 391 + 390):
      np.testing.assert_allclose(float(lr(jnp.int32(update))), want, rtol=1e-5)
  tx = make_optimizer(cfg, 391)
  params = {'w': jnp.array([0.5, -1.0, 2.0])}
  grads = {'w': jnp.array([1e-3, -2e-3, 0.0])}
  updates, _ = tx.update(grads, tx.init(params), params)
  g = np.array([1e-3, -2e-3, 0.0]) + 2.5e-5 * np.array([0.5, -1.0, 2.0])  # first Adam step: -lr·g/(|g| + ε)
  np.testing.assert_allclose(updates['w'], -2e-4 * g / (np.abs(g) + 1e-8), rtol=1e-5)
