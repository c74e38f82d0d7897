"""Optimizers for G and D from the config, schedules through optax (never by hand).

The released MNIST recipe: SGD with momentum; the learning rate divided by `lr_decay` after
every update and floored at `min_lr`; momentum rising linearly from `momentum` to
`final_momentum` between epochs `momentum_start` and `momentum_saturate`.
"""
import optax

from gan_jax.errors import UserError


def learning_rate_schedule(cfg):
  if cfg.get('lr_decay', 1.0) == 1.0:
    return cfg.lr
  # lr_t = lr / decay**t, floored: exponential_decay treats end_value as a floor when decaying.
  return optax.exponential_decay(init_value=cfg.lr, transition_steps=1,
                                 decay_rate=1.0 / cfg.lr_decay, end_value=cfg.min_lr)


def momentum_schedule(cfg, updates_per_epoch: int):
  final = cfg.get('final_momentum', None)
  if final is None or final == cfg.momentum:
    return cfg.momentum
  start = int(cfg.momentum_start * updates_per_epoch)
  span = max(1, int((cfg.momentum_saturate - cfg.momentum_start) * updates_per_epoch))
  return optax.linear_schedule(cfg.momentum, final, transition_steps=span, transition_begin=start)


def make_optimizer(cfg, updates_per_epoch: int) -> optax.GradientTransformation:
  """One network's optimizer. `updates_per_epoch` converts epoch-based schedules to updates."""
  if cfg.lr <= 0:
    raise UserError(f'optim learning rate lr={cfg.lr} must be positive.')
  if cfg.name == 'sgd':
    return optax.inject_hyperparams(optax.sgd)(
        learning_rate=learning_rate_schedule(cfg),
        momentum=momentum_schedule(cfg, updates_per_epoch))
  if cfg.name == 'adam':
    return optax.inject_hyperparams(optax.adam)(
        learning_rate=learning_rate_schedule(cfg), b1=cfg.get('b1', 0.5), b2=cfg.get('b2', 0.999))
  raise UserError(f'optim name={cfg.name!r} is unknown; choose sgd or adam.')
