"""Algorithm 1 of the paper as ONE jitted (pmapped) step, and the state it updates.

`train_step(spec, state, batch)`: `batch` holds one real minibatch per discriminator update,
[k, b, ...]: a dict {'image': ..., 'label': ...} (labels for a conditional model, §7 item 1; a
bare array is the images alone), as stored (uint8 pixels for images: `spec.data_scale` converts
them on the device, so the host moves a quarter of the bytes). A `lax.scan` runs the k D-updates, then one G-update
follows, in one compiled function. All randomness derives from `state.rng`, the step number and each example's *global* index, so
the result is the same on 1 device or N (up to float summation order) and on resume.
"""
import dataclasses
from typing import Any, Callable

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan_jax import models, spectral
from gan_jax.data.pipeline import scale
from gan_jax.games import players
from gan_jax.games.paper import PaperGame


@flax.struct.dataclass
class GANState:
  step: jax.Array
  g_params: Any
  d_params: Any
  g_opt_state: Any
  d_opt_state: Any
  rng: jax.Array
  g_ema: Any = None  # debiased exponential moving average of g_params; None when spec.ema_decay == 0
  d_ema: Any = None  # the same of d_params (a classifier's Polyak average); None when spec.d_ema_decay == 0
  d_sn: Any = None  # spectral normalisation's u and v per weight matrix of D (spectral.py); None without it


@dataclasses.dataclass(frozen=True)
class GANSpec:
  """The static parts of the step: modules, optimizers, the game and the algorithm's choices."""
  g: nn.Module
  d: nn.Module
  g_tx: optax.GradientTransformation
  d_tx: optax.GradientTransformation
  noise_dim: int
  noise: str = 'uniform'
  g_loss: str = 'non_saturating'
  d_loss: str = 'cross_entropy'  # or 'hinge' (objective.DISCRIMINATOR_LOSSES); the paper's game only
  augment: tuple = ()  # DiffAugment ops D sees data and samples through (gan_jax/augment.py)
  k: int = 1
  update: str = 'alternating'
  ema_decay: float = 0.0  # > 0: keep an EMA of G's weights (sampled at evaluation)
  ema_start_step: int = 0  # the average begins after this many steps (before: it is G itself)
  d_ema_decay: float = 0.0  # > 0: keep an EMA of D's weights, updated once per step after its k updates
  data_scale: str = 'none'  # real batches arrive as stored (uint8 images) and are scaled here
  num_classes: int = 0  # > 0: G(z, y) and D(x, y), conditioned on the class label (§7 item 1)
  game: Any = dataclasses.field(default_factory=PaperGame)
  e: nn.Module = None  # the encoder of the games that infer z from x (games/bigan.py)
  unsupervised_weight: float = 1.0  # games/semi_supervised.py: 0 trains D on the labels alone
  r1_gamma: float = 0.0  # > 0: D's loss adds the R1 penalty γ/2·E‖∇ₓD(x)‖² on data (PaperGame)
  r1_examples: int = 0  # the penalty's mean over the first r1_examples of each minibatch; 0: all
  spectral_norm: bool = False  # D's weight matrices divided by their largest singular value (spectral.py)
  axis_name: Any = None


def on_axis(spec: GANSpec, axis_name) -> GANSpec:
  """The spec inside a data-parallel map over `axis_name`: the games' means and the players'
  batch statistics (models.with_batch_axis) over every device's examples."""
  return dataclasses.replace(spec, axis_name=axis_name, g=models.with_batch_axis(spec.g, axis_name),
                             e=models.with_batch_axis(spec.e, axis_name))


def as_batch(batch) -> dict:
  """Real data as a dict: {'image': [..., b, *shape]} and, for a conditional model, 'label'."""
  return batch if isinstance(batch, dict) else {'image': batch}


def _scaled(spec, batch) -> dict:
  batch = as_batch(batch)  # images (any key naming one: 'labelled_image' too) scaled on the device
  return {k: scale(v, spec.data_scale) if k.endswith('image') else v for k, v in batch.items()}


def create_state(spec: GANSpec, seed: int, data_shape, data_mean=None, d_init_batch=None) -> GANState:
  """Initial parameters and optimizer states. `data_mean` (in G's output range, [0, 1]) sets G's
  output bias to the logit of the per-pixel marginals, as the released MNIST model did;
  `d_init_batch` (real examples as stored) initialises a D that initialises from data
  (models.needs_init_batch)."""
  g_bias = None
  if data_mean is not None:
    p = np.clip(np.asarray(data_mean, np.float64).reshape(-1), 1e-7, 1 - 1e-7)
    g_bias = np.log(p / (1 - p)).astype(np.float32)
  # one program, not one per initializer and optimizer op (each its own dispatch, and on a cache
  # hit its own lookup: about a second of every start)
  return jax.jit(_initial_state, static_argnums=(0, 2))(spec, seed, tuple(data_shape), g_bias, d_init_batch)


def state_shapes(spec: GANSpec, seed: int, data_shape, device) -> GANState:
  """The initial state's structure, shapes and dtypes, placed on `device`, without computing it:
  what a checkpoint is restored into (evaluation, pictures). Nothing is compiled: the initial
  state is a program of its own, 1-6 s of XLA compiling on a CPU core (configs/mnist.py: 2 s)."""
  shapes = jax.eval_shape(lambda: _initial_state(spec, seed, tuple(data_shape), None, None))
  on_device = jax.sharding.SingleDeviceSharding(device)
  return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=on_device), shapes)


def _initial_state(spec, seed, data_shape, g_bias, d_init_batch):
  init_key, train_key = jax.random.split(jax.random.PRNGKey(seed))
  g_key, d_key = jax.random.split(init_key)
  if d_init_batch is not None:
    d_init_batch = scale(d_init_batch, spec.data_scale)
  g_params, d_params = spec.game.init(spec, g_key, d_key, data_shape, d_init_batch)
  if g_bias is not None:
    g_params = flax.core.copy(g_params, {})
    spec.game.generator_params(g_params)['params']['out']['bias'] = g_bias
  return GANState(step=jnp.zeros((), jnp.int32), g_params=g_params, d_params=d_params,
                  g_opt_state=spec.g_tx.init(g_params), d_opt_state=spec.d_tx.init(d_params),
                  rng=train_key, g_ema=jax.tree.map(jnp.copy, g_params) if spec.ema_decay > 0 else None,
                  d_ema=jax.tree.map(jnp.copy, d_params) if spec.d_ema_decay > 0 else None,
                  d_sn=spectral.init(d_params, jax.random.fold_in(d_key, 1)) if spec.spectral_norm else None)


def sampling_params(state: GANState):
  """The generator weights to sample from: the EMA when the run keeps one."""
  return state.g_params if state.g_ema is None else state.g_ema


def discriminator_params(state: GANState):
  """D's weights as D uses them: spectrally normalised when the run is (train.spectral_norm)."""
  return spectral.normalise(state.d_params, state.d_sn)


def classifier_params(state: GANState):
  """D's weights for classifying (the semi-supervised game): its EMA when the run keeps one."""
  return state.d_params if state.d_ema is None else state.d_ema


def debiased_average(average, params, decay: float, t):
  """The moving average after its t-th update (t >= 1), debiased as Adam's moments are: the
  average of params_1..params_t with weights ∝ decay^(t-i), so the initial value gets no weight
  however long the horizon 1/(1-decay) (t = 1 copies params)."""
  step_size = (1 - decay) / (1 - decay ** t.astype(jnp.float32))
  return optax.incremental_update(params, average, step_size=step_size)


def make_sampler(spec: GANSpec) -> Callable:
  """`sample(g_params, z, labels=None)`: the game's G(z) (G(z, y) for a conditional G, labels
  defaulting to sample_labels), jitted once per run."""
  fn = jax.jit(lambda params, z, labels: spec.game.sample(spec, params, z, labels))

  def sample(g_params, z, labels=None):
    if spec.num_classes and labels is None:
      labels = players.sample_labels(spec, len(z))
    return fn(g_params, z, labels if spec.num_classes else None)
  return sample


def _d_grads(spec, state, real, key):
  """D's gradient and metrics, and the power iteration's new vectors (None without spectral
  normalisation): D's loss differentiated through W/σ(W), one iteration per D-update."""
  vectors = None if state.d_sn is None else spectral.iterate(state.d_params, state.d_sn)
  d_loss = lambda d_params, *args: spec.game.d_loss(spec, spectral.normalise(d_params, vectors), *args)
  (loss, metrics), grads = jax.value_and_grad(d_loss, has_aux=True)(
      state.d_params, state.g_params, as_batch(real), key)
  grads = players.pmean(spec, grads)
  return grads, {'d_loss': loss, **metrics, 'd_grad_norm': optax.tree.norm(grads)}, vectors


def _g_grads(spec, state, real, key):
  (loss, metrics), grads = jax.value_and_grad(spec.game.g_loss, argnums=1, has_aux=True)(
      spec, state.g_params, discriminator_params(state), real, key)
  grads = players.pmean(spec, grads)
  return grads, {'g_loss': loss, **metrics, 'g_grad_norm': optax.tree.norm(grads)}


def _apply_d(spec, state, grads, vectors=None):
  updates, opt_state = spec.d_tx.update(grads, state.d_opt_state, state.d_params)
  return state.replace(d_params=optax.apply_updates(state.d_params, updates), d_opt_state=opt_state,
                       d_sn=vectors)


def _apply_g(spec, state, grads):
  updates, opt_state = spec.g_tx.update(grads, state.g_opt_state, state.g_params)
  g_params = optax.apply_updates(state.g_params, updates)
  g_ema = None
  if state.g_ema is not None:
    # Counted from ema_start_step, the G of the first steps gets no weight either.
    g_ema = debiased_average(state.g_ema, g_params, spec.ema_decay, jnp.maximum(state.step + 1 - spec.ema_start_step, 1))
  return state.replace(g_params=g_params, g_opt_state=opt_state, g_ema=g_ema)


def d_update(spec, state, real, key):
  """One step of D's ascent of V on a real minibatch and fresh noise."""
  grads, metrics, vectors = _d_grads(spec, state, real, key)
  return _apply_d(spec, state, grads, vectors), metrics


def g_update(spec, state, key, batch_size, real=None):
  """One step of G's descent (minimax or non-saturating loss) on fresh noise. `real`: the real
  minibatch of the step's last D-update, for games whose G sees data (the paper's does not: it
  only takes the batch size)."""
  real = as_batch(real) if real is not None else {'image': jnp.zeros((batch_size, 0))}
  grads, metrics = _g_grads(spec, state, real, key)
  return _apply_g(spec, state, grads), metrics


def simultaneous_update(spec, state, real, key):
  """The released code's update: D and G gradients on the same minibatch, noise and dropout
  masks, both taken at the current parameters and applied together."""
  real = as_batch(real)
  d_grads, d_metrics, vectors = _d_grads(spec, state, real, key)
  g_grads, g_metrics = _g_grads(spec, state, real, key)
  return _apply_g(spec, _apply_d(spec, state, d_grads, vectors), g_grads), {**d_metrics, **g_metrics}


def train_discriminator(spec, state, batches, key):
  """D alone, G held fixed: one `d_update` per real minibatch in `batches` [n, b, ...] (the inner
  loop of Algorithm 1 run to convergence, as Proposition 1 assumes)."""
  batches = _scaled(spec, batches)
  keys = jax.random.split(key, batches['image'].shape[0])
  return jax.lax.scan(lambda st, inputs: d_update(spec, st, *inputs), state, (batches, keys))


def step_keys(state, k):
  """The keys of one train_step: k for the D-updates, then one for the G-update."""
  step_key = jax.random.fold_in(state.rng, state.step)
  return [jax.random.fold_in(step_key, i) for i in range(k + 1)]


def train_step(spec: GANSpec, state: GANState, batch):
  """Algorithm 1, one iteration: k D-updates (lax.scan), then one G-update."""
  keys = step_keys(state, spec.k)
  batch = _scaled(spec, batch)  # on the device: the host only moves uint8
  if spec.update == 'simultaneous':
    state, metrics = simultaneous_update(spec, state, jax.tree.map(lambda a: a[0], batch), keys[0])
  else:
    def body(st, inputs):
      real, key = inputs
      return d_update(spec, st, real, key)
    state, d_metrics = jax.lax.scan(body, state, (batch, jnp.stack(keys[:-1])))
    last = jax.tree.map(lambda a: a[-1], batch)
    state, g_metrics = g_update(spec, state, keys[-1], batch['image'].shape[1], last)
    metrics = {**jax.tree.map(jnp.mean, d_metrics), **g_metrics}
  if state.d_ema is not None:  # D as it stands after the step's k updates
    state = state.replace(d_ema=debiased_average(state.d_ema, state.d_params, spec.d_ema_decay, state.step + 1))
  return state.replace(step=state.step + 1), players.pmean(spec, metrics)


def make_p_train_step(spec: GANSpec, devices=None) -> Callable:
  """The data-parallel step: state replicated, batch [devices, k, b, ...], gradients pmean'd."""
  spec = on_axis(spec, 'batch')
  return jax.pmap(lambda state, batch: train_step(spec, state, batch), axis_name='batch',
                  devices=devices, donate_argnums=(0,))


def train_steps(spec: GANSpec, state: GANState, batches):
  """Several iterations of Algorithm 1 in one dispatch: `batches` is [steps, k, b, ...]. Saves
  the per-call dispatch cost on fast steps (measured +17% on the MNIST step on 2 CPU cores)."""
  return jax.lax.scan(lambda st, batch: train_step(spec, st, batch), state, batches)


def make_train_steps(spec: GANSpec, dp) -> Callable:
  """`train_steps` over `dp`'s devices (a parallel.DataParallel, either way): batches
  [devices, steps, k, b, ...] as `dp.batch` places them; metrics replicated, [steps] on each."""
  spec = on_axis(spec, dp.axis_name)
  return dp.map(lambda state, batches: train_steps(spec, state, batches))


def make_p_train_steps(spec: GANSpec, devices=None) -> Callable:
  """`train_steps`, data-parallel: batches [devices, steps, k, b, ...]; metrics [devices, steps]."""
  spec = on_axis(spec, 'batch')
  return jax.pmap(lambda state, batches: train_steps(spec, state, batches), axis_name='batch',
                  devices=devices, donate_argnums=(0,))
