"""Optimizers for G and D from the config, schedules through optax (never by hand).

The released MNIST recipe (pylearn2's SGD as mnist.yaml sets it up): momentum in pylearn2's form,
v <- momentum * v - lr * g, θ <- θ + v; the learning rate divided by `lr_decay` after every update
(from update `lr_decay_start`, 0 in the recipe) and floored at `min_lr` (ExponentialDecay); momentum moved once per epoch along a line from
`momentum` to `final_momentum` between epochs `momentum_start` and `momentum_saturate`
(MomentumAdjustor).
"""
import math

import jax
import jax.numpy as jnp
import optax

from gan_jax.errors import UserError


def learning_rate_schedule(cfg):
  if cfg.get('lr_decay', 1.0) == 1.0:
    return cfg.lr
  # lr_t = max(lr / decay**t, min_lr). Not optax.exponential_decay: it raises the float32
  # rate 1/1.000004 to the power t, so that rate's rounding compounds (measured, tests/test_optim:
  # lr 0.08% too high after 125k updates, 1.3% after 2M); log(decay) taken here in float64
  # keeps lr_t within float32 rounding of the closed form at any t.
  # lr_decay_start: the rate holds until that update, then decays (a fast phase, then a settling one).
  # lr_decay_every: the rate moves by lr_decay once per that many updates counted from
  # lr_decay_start, a staircase (BiGAN's: once per epoch from epoch 200, train_gan.py:812-831).
  log_decay, start, every = math.log(cfg.lr_decay), cfg.get('lr_decay_start', 0), cfg.get('lr_decay_every', 1)

  def schedule(count):
    moves = jnp.maximum(count - start, 0) // every
    return jnp.maximum(cfg.lr * jnp.exp(-log_decay * moves), cfg.min_lr)
  return schedule


def momentum_schedule(cfg, updates_per_epoch: int):
  final = cfg.get('final_momentum', None)
  if final is None or final == cfg.momentum:
    return cfg.momentum
  start, saturate, init = cfg.momentum_start, cfg.momentum_saturate, cfg.momentum

  def schedule(count):
    # MomentumAdjustor counts monitor calls: one before training, one after each epoch, so
    # epoch e (from 1) trains with the value for count e; it changes between epochs, not within.
    epoch = count // updates_per_epoch + 1
    if saturate == start:
      alpha = (epoch >= start).astype(jnp.float32)
    else:
      alpha = jnp.clip((epoch - start) / (saturate - start), 0.0, 1.0)
    return init * (1 - alpha) + alpha * final
  return schedule


def _pylearn2_momentum(learning_rate, momentum) -> optax.GradientTransformation:
  """v <- momentum * v - learning_rate * g; the update is v. Not optax.sgd: it keeps
  v <- momentum * v + g and steps by -learning_rate * v, the same only while the rate is constant
  (once it decays, past gradients are rescaled by today's rate; here they keep the rate they had).
  Not optax.chain(scale_by_learning_rate, trace) either, which is this rule too: under pmap with 2
  CPU devices XLA computed NaN gradients from finite parameters in the step that followed it
  (tests/test_launch.py's folder run, jax 0.10.2), while the same program jitted on one device
  and this form were finite."""
  def update(grads, velocity, params=None):
    del params
    velocity = jax.tree.map(lambda v, g: momentum * v - learning_rate * g, velocity, grads)
    return velocity, velocity
  return optax.GradientTransformation(lambda params: jax.tree.map(jnp.zeros_like, params), update)


def _adam_with_l2(learning_rate, b1, b2, eps, eps_root, weight_decay) -> optax.GradientTransformation:
  """Adam on the gradient of the loss plus an L2 penalty, weight_decay · θ added before Adam's
  moments (BiGAN's, lib/updates.py:43-50); not optax.adamw, which decays the weights after."""
  return optax.chain(optax.add_decayed_weights(weight_decay), optax.adam(learning_rate, b1, b2, eps, eps_root))


def make_optimizer(cfg, updates_per_epoch: int) -> optax.GradientTransformation:
  """One network's optimizer. `updates_per_epoch` converts epoch-based schedules to updates."""
  if cfg.lr <= 0:
    raise UserError(f'optim learning rate lr={cfg.lr} must be positive.')
  if cfg.name == 'sgd':
    return optax.inject_hyperparams(_pylearn2_momentum)(
        learning_rate=learning_rate_schedule(cfg),
        momentum=momentum_schedule(cfg, updates_per_epoch))
  if cfg.name == 'adam':
    # eps_root > 0 (eps 0) puts ε inside the root, √(v̂ + ε), as Salimans et al.'s adam_updates
    kw = dict(learning_rate=learning_rate_schedule(cfg), b1=cfg.get('b1', 0.5), b2=cfg.get('b2', 0.999),
              eps=cfg.get('eps', 1e-8), eps_root=cfg.get('eps_root', 0.0))
    if not cfg.get('weight_decay', 0.0):
      return optax.inject_hyperparams(optax.adam)(**kw)
    return optax.inject_hyperparams(_adam_with_l2)(weight_decay=cfg.weight_decay, **kw)
  raise UserError(f'optim name={cfg.name!r} is unknown; choose sgd or adam.')


def initial_hyperparams(tx: optax.GradientTransformation, params):
  """The hyperparameters `tx` (inject_hyperparams) puts in a new optimizer state for `params`,
  computed on one scalar of their dtype (the dtype optax gives them) instead of the whole state."""
  return tx.init({'p': jnp.zeros((), optax.tree.dtype(params, 'highest'))}).hyperparams
