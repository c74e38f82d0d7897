"""Algorithm 1 as one step: scan == a plain loop written by hand, one compile per k, 1 device == 4 devices."""
import functools

import chex
import jax
import numpy as np
import optax
import pytest

from configs import mnist
from gan_jax import models, step
from gan_jax.optim import make_optimizer
from tests.conftest import dispatches, tiny_paper_config

SHAPE = (28, 28, 1)
# every test here compiles the step (and the initial state) for one to four steps
pytestmark = pytest.mark.compile_bound


def make_spec(k, update='alternating', g_loss='non_saturating', ema_decay=0.0, ema_start_step=0, d_ema_decay=0.0,
              g_tx=None):
  c = tiny_paper_config(mnist.get_config())  # paper layers (maxout, dropout) and schedules, narrow
  g, d = models.make_models(c.model, SHAPE)
  return step.GANSpec(g, d, g_tx or make_optimizer(c.optim.g, 500), make_optimizer(c.optim.d, 500),
                      noise_dim=c.model.noise_dim, noise=c.model.noise, g_loss=g_loss, k=k,
                      update=update, ema_decay=ema_decay, ema_start_step=ema_start_step, d_ema_decay=d_ema_decay)


def real_batches(k, batch, seed=0):
  return np.random.default_rng(seed).uniform(size=(k, batch) + SHAPE).astype(np.float32)


def assert_trees_close(a, b, rtol=1e-5, atol=1e-6):
  chex.assert_trees_all_close(a, b, rtol=rtol, atol=atol)


def reference_algorithm1(spec, state, batches):
  """Algorithm 1 written out as a plain loop, without the step module's helpers: per update, the
  losses by hand from D's logits (D: ½·(−log D(x) − log(1 − D(G(z)))), G: −log D(G(z))), and
  pylearn2's SGD (v <- μv − lr·g, lr 0.1 / 1.000004^t, μ 0.5 in the first epoch) by hand. Only the
  randomness convention is shared: step key fold_in(rng, step), update i's key fold_in(step key,
  i), one key per example fold_in(fold_in(key, salt), example) (salt 0: z, 1: D's dropout on
  data, 2: D's dropout on samples)."""
  fold = jax.random.fold_in
  dp, gp = state.d_params, state.g_params
  dv, gv = (jax.tree.map(np.zeros_like, p) for p in (dp, gp))
  counts = {'d': 0, 'g': 0}

  def sgd(params, velocity, grads, who):
    lr = 0.1 / 1.000004 ** counts[who]
    counts[who] += 1
    velocity = jax.tree.map(lambda v, g: 0.5 * v - lr * g, velocity, grads)
    return jax.tree.map(lambda p, v: p + v, params, velocity), velocity

  for s, batch in enumerate(batches):
    k, b = batch.shape[:2]
    step_key = fold(state.rng, s)
    per_example = lambda key, salt: jax.numpy.stack([fold(fold(key, salt), j) for j in range(b)])
    logits = lambda d_params, x, keys: jax.vmap(
        lambda xi, ki: spec.d.apply(d_params, xi[None], train=True, rngs={'dropout': ki})[0])(x, keys)
    fakes = lambda g_params, key: spec.g.apply(g_params, jax.vmap(
        lambda kk: models.sample_noise(kk, (spec.noise_dim,), 'uniform'))(per_example(key, 0)))
    for i in range(k):
      key = fold(step_key, i)
      d_loss = lambda d: 0.5 * (jax.numpy.mean(jax.nn.softplus(-logits(d, batch[i], per_example(key, 1))))
                                + jax.numpy.mean(jax.nn.softplus(logits(d, fakes(gp, key), per_example(key, 2)))))
      dp, dv = sgd(dp, dv, jax.grad(d_loss)(dp), 'd')
    key = fold(step_key, k)
    g_loss = lambda g: jax.numpy.mean(jax.nn.softplus(-logits(dp, fakes(g, key), per_example(key, 2))))
    gp, gv = sgd(gp, gv, jax.grad(g_loss)(gp), 'g')
  return dp, gp


@pytest.mark.parametrize('k', [1, 3])
def test_scanned_step_equals_a_plain_loop_of_algorithm_1(k):
  spec = make_spec(k)
  state = step.create_state(spec, 0, SHAPE, np.full(SHAPE, 0.2))
  batches = [real_batches(k, 8, seed=s) for s in range(2)]  # two steps: momentum and step keys matter
  fn, scanned = jax.jit(functools.partial(step.train_step, spec)), state
  for batch in batches:
    scanned, _ = fn(scanned, batch)
  d_params, g_params = reference_algorithm1(spec, state, batches)
  assert_trees_close(scanned.d_params, d_params)
  assert_trees_close(scanned.g_params, g_params)
  assert int(scanned.step) == 2
  # and it is not trivially equal: the players moved
  assert not np.array_equal(state.d_params['params']['Dense_0']['kernel'], d_params['params']['Dense_0']['kernel'])
  assert not np.array_equal(state.g_params['params']['Dense_0']['kernel'], g_params['params']['Dense_0']['kernel'])


@pytest.mark.parametrize('k', [1, 3])
def test_one_compile_per_k(k):
  chex.clear_trace_counter()  # counters are per code location, shared by the parametrizations
  spec = make_spec(k)

  def train_step(state, batch):  # the scanned test's program (name, spec, shapes): XLA's cache has it
    return step.train_step(spec, state, batch)
  fn = jax.jit(chex.assert_max_traces(n=1)(train_step))
  state = step.create_state(spec, 0, SHAPE, np.full(SHAPE, 0.2))
  for i in range(3):
    state, metrics = fn(state, real_batches(k, 8, seed=i))
  assert int(state.step) == 3 and np.isfinite(float(metrics['d_loss']))


def two_dispatches(k):
  """Two dispatches of two steps each, k real minibatches of 16 per step."""
  return [np.stack([real_batches(k, 16, seed=2 * i + j) for j in range(2)]) for i in range(2)]


@pytest.mark.parametrize('update', ['alternating', 'simultaneous'])
def test_one_device_equals_four_devices(update):
  k = 2 if update == 'alternating' else 1
  spec = make_spec(k, update)
  state = step.create_state(spec, 0, SHAPE, np.full(SHAPE, 0.2))
  assert len(jax.local_devices()) >= 4, 'conftest asks for 4 CPU devices'
  results = {n: dispatches(spec, state, two_dispatches(k), n, 'pmap') for n in (1, 4)}
  assert int(results[4][0].step) == 4
  assert_trees_close(results[1][0].g_params, results[4][0].g_params, rtol=1e-4, atol=1e-6)
  assert_trees_close(results[1][0].d_params, results[4][0].d_params, rtol=1e-4, atol=1e-6)
  assert_trees_close(results[1][1], results[4][1], rtol=1e-4, atol=1e-5)


def test_shard_map_step_equals_pmap_bit_for_bit():
  """mesh.api=shard_map (jit over a jax.make_mesh mesh, global arrays) runs pmap's per-device
  program: on 1, 2 and 4 devices, two dispatches of two steps each (k=2, the paper's maxout D with
  per-example dropout), every array of the state and every metric equal bit for bit."""
  spec = make_spec(2)
  state = step.create_state(spec, 0, SHAPE, np.full(SHAPE, 0.2))
  for n in (1, 2, 4):
    results = {api: dispatches(spec, state, two_dispatches(2), n, api) for api in ('pmap', 'shard_map')}
    assert int(results['shard_map'][0].step) == 4
    chex.assert_trees_all_equal(results['pmap'], results['shard_map'])


def test_simultaneous_update_takes_both_gradients_at_the_same_parameters():
  spec = make_spec(1, 'simultaneous')
  state = step.create_state(spec, 0, SHAPE, np.full(SHAPE, 0.2))
  batch = real_batches(1, 16)
  new, metrics = jax.jit(functools.partial(step.train_step, spec))(state, batch)
  key = step.step_keys(state, 1)[0]
  d_only, _ = step.d_update(spec, state, batch[0], key)
  g_only, _ = step.g_update(spec, state, key, 16)  # G's gradient through the *old* D
  assert_trees_close(new.d_params, d_only.d_params)
  assert_trees_close(new.g_params, g_only.g_params)
  assert {'d_loss', 'g_loss', 'value', 'd_real', 'd_fake', 'd_grad_norm', 'g_grad_norm'} <= set(metrics)


@pytest.mark.parametrize('g_loss', ['minimax', 'non_saturating'])
def test_steps_are_deterministic_and_move_both_players(g_loss):
  spec = make_spec(1, g_loss=g_loss)
  fn = jax.jit(functools.partial(step.train_step, spec))
  state = step.create_state(spec, 0, SHAPE, np.full(SHAPE, 0.2))
  a, _ = fn(state, real_batches(1, 16))
  b, _ = fn(state, real_batches(1, 16))
  chex.assert_trees_all_equal(a, b)
  for before, after in ((state.g_params, a.g_params), (state.d_params, a.d_params)):
    assert not np.array_equal(before['params']['Dense_0']['kernel'], after['params']['Dense_0']['kernel'])


@pytest.mark.parametrize('update', ['alternating', 'simultaneous'])
def test_ema_of_g_follows_its_recurrence_and_leaves_training_unchanged(update):
  decay = 0.75  # far from 1, so a wrong recurrence shows in a few steps
  # G under Adam: the released SGD moves G by ~1e-9 in four steps (D starts near constant), below
  # float32's resolution of its weights, where any average passes; Adam moves each weight ~1e-3
  with_ema, without = (make_spec(1, update, ema_decay=e, g_tx=optax.adam(1e-3)) for e in (decay, 0.0))
  fns = [jax.jit(functools.partial(step.train_step, s)) for s in (with_ema, without)]
  states = [step.create_state(s, 0, SHAPE, np.full(SHAPE, 0.2)) for s in (with_ema, without)]
  assert states[1].g_ema is None and step.sampling_params(states[1]) is states[1].g_params
  initial = states[0].g_params
  total = jax.tree.map(lambda a: np.zeros(a.shape, np.float64), initial)
  for t in range(1, 5):  # debiased: sum_i decay^(t-i) G_i / sum_i decay^(t-i), G_0 excluded
    states = [fn(st, real_batches(1, 16, seed=t))[0] for fn, st in zip(fns, states)]
    total = jax.tree.map(lambda s, g: decay * s + np.asarray(g, np.float64), total, states[0].g_params)
  norm = sum(decay ** i for i in range(4))
  assert_trees_close(states[0].g_ema, jax.tree.map(lambda s: (s / norm).astype(np.float32), total))
  chex.assert_trees_all_equal(states[0].g_params, states[1].g_params)  # EMA only watches
  chex.assert_trees_all_equal(states[0].d_params, states[1].d_params)
  assert step.sampling_params(states[0]) is states[0].g_ema
  moved = jax.tree.map(lambda a, b: float(np.abs(a - b).max()), states[0].g_params, initial)
  lag = jax.tree.map(lambda a, b: float(np.abs(a - b).max()), states[0].g_params, states[0].g_ema)
  assert max(jax.tree.leaves(lag)) > 0.1 * max(jax.tree.leaves(moved)) > 0  # it does lag behind G


def test_ema_started_late_is_g_until_then_and_averages_only_what_follows():
  decay, start = 0.75, 2
  spec = make_spec(1, ema_decay=decay, ema_start_step=start, g_tx=optax.adam(1e-3))  # G moves: see above
  fn = jax.jit(functools.partial(step.train_step, spec))
  state = step.create_state(spec, 0, SHAPE, np.full(SHAPE, 0.2))
  history = []
  for t in range(1, 6):
    state = fn(state, real_batches(1, 16, seed=t))[0]
    history.append(jax.tree.map(lambda a: np.asarray(a, np.float64), state.g_params))
    if t <= start:  # the average has not begun: it is G
      chex.assert_trees_all_equal(state.g_ema, state.g_params)
  weights = [decay ** (5 - t) for t in range(start + 1, 6)]  # G_3, G_4, G_5; G_1 and G_2 excluded
  expected = jax.tree.map(lambda *g: (sum(w * x for w, x in zip(weights, g)) / sum(weights)).astype(np.float32),
                          *history[start:])
  assert_trees_close(state.g_ema, expected)


@pytest.mark.parametrize('update,k', [('alternating', 2), ('simultaneous', 1)])
def test_ema_of_d_averages_d_after_each_step_and_leaves_training_unchanged(update, k):
  """D's average: one update per step, of D as it stands after the step's k updates, debiased
  (D_0 excluded), against a weighted sum of the D of each step computed here."""
  decay = 0.6
  with_ema, without = make_spec(k, update, d_ema_decay=decay), make_spec(k, update)
  fns = [jax.jit(functools.partial(step.train_step, s)) for s in (with_ema, without)]
  states = [step.create_state(s, 0, SHAPE, np.full(SHAPE, 0.2)) for s in (with_ema, without)]
  assert states[1].d_ema is None and step.classifier_params(states[1]) is states[1].d_params
  history = []
  for t in range(1, 5):
    states = [fn(st, real_batches(k, 16, seed=t))[0] for fn, st in zip(fns, states)]
    history.append(jax.tree.map(lambda a: np.asarray(a, np.float64), states[0].d_params))
  weights = [decay ** (4 - t) for t in range(1, 5)]
  expected = jax.tree.map(lambda *d: (sum(w * x for w, x in zip(weights, d)) / sum(weights)).astype(np.float32), *history)
  assert_trees_close(states[0].d_ema, expected)
  chex.assert_trees_all_equal(states[0].d_params, states[1].d_params)  # the average only watches
  chex.assert_trees_all_equal(states[0].g_params, states[1].g_params)
  assert step.classifier_params(states[0]) is states[0].d_ema


@pytest.mark.parametrize('kind', ['unit', 'symmetric'])
def test_uint8_batches_are_scaled_inside_the_step(kind):
  """The host sends uint8 pixels; the step scales them on the device. It must equal the step on
  the same pixels scaled on the host by hand ([0, 1]: x/255; [-1, 1]: x/127.5 - 1)."""
  import dataclasses
  spec = make_spec(2)
  state = step.create_state(spec, 0, SHAPE, np.full(SHAPE, 0.2))
  pixels = np.random.default_rng(3).integers(0, 256, (2, 16) + SHAPE, dtype=np.uint8)
  by_hand = pixels.astype(np.float64) / 255 if kind == 'unit' else pixels.astype(np.float64) / 127.5 - 1
  on_device, _ = jax.jit(functools.partial(step.train_step, dataclasses.replace(spec, data_scale=kind)))(state, pixels)
  on_host, _ = jax.jit(functools.partial(step.train_step, spec))(state, by_hand.astype(np.float32))
  assert_trees_close(on_device, on_host)
  unscaled, _ = jax.jit(functools.partial(step.train_step, spec))(state, pixels.astype(np.float32))
  assert not np.allclose(unscaled.d_params['params']['Dense_0']['kernel'],
                         on_device.d_params['params']['Dense_0']['kernel'])
