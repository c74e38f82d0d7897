"""Spectral normalisation of D (train.spectral_norm): σ against an SVD, one power iteration by
hand, the gradient through W/σ against its closed form, and in the step: one iteration per
D-update, the normalised D used by both players, its layers near unit spectral norm in training."""
import functools

import chex
import jax
import numpy as np
import optax
import pytest

from configs import ring2d
from gan_jax import spectral, step, train
from gan_jax.errors import UserError


def _params(seed=0):
  rng = np.random.default_rng(seed)
  return {'params': {'Dense_0': {'kernel': rng.normal(size=(20, 30)).astype(np.float32),
                                 'bias': rng.normal(size=(30,)).astype(np.float32)},
                     'Conv_0': {'kernel': rng.normal(size=(4, 4, 3, 8)).astype(np.float32)},
                     'scale_only': {'scale': rng.normal(size=(5,)).astype(np.float32)}}}


def _matrix(kernel):  # [out, in], written out here as PyTorch reads a weight
  return np.asarray(kernel, np.float64).reshape(-1, kernel.shape[-1]).T


def test_sigma_converges_to_the_largest_singular_value():
  params = _params()
  vectors = spectral.init(params, jax.random.PRNGKey(0))
  assert sorted(vectors) == ['params/Conv_0/kernel', 'params/Dense_0/kernel']  # biases and scales are not
  for _ in range(300):
    vectors = spectral.iterate(params, vectors)
  sigmas = spectral.sigmas(params, vectors)
  normalised = spectral.normalise(params, vectors)
  for layer in ('Dense_0', 'Conv_0'):
    svd = np.linalg.svd(_matrix(params['params'][layer]['kernel']), compute_uv=False)
    assert float(sigmas[f'params/{layer}/kernel']) == pytest.approx(svd[0], rel=1e-4), layer
    after = np.linalg.svd(_matrix(normalised['params'][layer]['kernel']), compute_uv=False)
    assert after[0] == pytest.approx(1.0, rel=1e-4) and after[1] < 1.0, layer
  np.testing.assert_array_equal(normalised['params']['Dense_0']['bias'], params['params']['Dense_0']['bias'])
  np.testing.assert_array_equal(normalised['params']['scale_only']['scale'], params['params']['scale_only']['scale'])


def test_one_power_iteration_by_hand():
  params = _params(1)
  vectors = spectral.init(params, jax.random.PRNGKey(3))
  new = spectral.iterate(params, vectors)
  for path, uv in vectors.items():
    w = _matrix(params['params'][path.split('/')[1]]['kernel'])
    u = np.asarray(uv['u'], np.float64)
    assert np.linalg.norm(u) == pytest.approx(1.0, rel=1e-6)
    v = w.T @ u / np.linalg.norm(w.T @ u)
    u_next = w @ v / np.linalg.norm(w @ v)
    np.testing.assert_allclose(new[path]['v'], v, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(new[path]['u'], u_next, rtol=1e-4, atol=1e-6)
    assert float(spectral.sigmas(params, new)[path]) == pytest.approx(u_next @ w @ v, rel=1e-5)


def test_gradient_through_w_over_sigma_holds_u_and_v_constant():
  """∂⟨C, W/σ⟩/∂W with σ = uᵀWv and u, v constant: C/σ − ⟨C, W⟩/σ² · u vᵀ."""
  params = _params(2)
  vectors = spectral.iterate(params, spectral.init(params, jax.random.PRNGKey(1)))
  c = np.random.default_rng(5).normal(size=(20, 30))
  grad = jax.grad(lambda p: (spectral.normalise(p, vectors)['params']['Dense_0']['kernel'] * c).sum())(params)
  w = np.asarray(params['params']['Dense_0']['kernel'], np.float64)  # [in, out]: the matrix is its transpose
  u, v = (np.asarray(vectors['params/Dense_0/kernel'][k], np.float64) for k in ('u', 'v'))
  sigma = u @ w.T @ v
  expected = c / sigma - (c * w).sum() / sigma ** 2 * np.outer(v, u)
  np.testing.assert_allclose(grad['params']['Dense_0']['kernel'], expected, rtol=1e-4, atol=1e-6)
  assert not np.any(grad['params']['Dense_0']['bias'])  # the bias does not enter ⟨C, W/σ⟩


def test_no_weight_matrix_to_normalise_is_one_line():
  with pytest.raises(UserError, match='this D has none'):
    spectral.init({'params': {'bias': np.zeros(3, np.float32)}}, jax.random.PRNGKey(0))
  from configs import mnist_inpainting
  c = mnist_inpainting.get_config()
  c.train.spectral_norm = True
  with pytest.raises(UserError, match='train.spectral_norm=True normalises the D of the paper'):
    train.setup(c)


def _ring(spectral_norm):
  c = ring2d.get_config()
  c.mesh.num_devices = 1
  c.train.spectral_norm = spectral_norm
  return train.setup(c)


@pytest.mark.compile_bound
def test_the_step_iterates_once_per_d_update_and_both_players_see_d_normalised():
  exp = _ring(True)
  spec, state = exp.spec, exp.init_state
  assert state.d_sn is not None and _ring(False).init_state.d_sn is None
  batch = np.random.default_rng(0).normal(size=(1, 64, 2)).astype(np.float32)
  new, _ = jax.jit(functools.partial(step.train_step, spec))(state, batch)
  # the D-update: one iteration from the stored vectors at the kernels before the update
  chex.assert_trees_all_close(new.d_sn, spectral.iterate(state.d_params, state.d_sn), rtol=1e-4, atol=1e-6)
  key_d, key_g = step.step_keys(state, 1)
  after_d, _ = step.d_update(spec, state, batch[0], key_d)
  # D's gradient is the game's loss differentiated through the normalised D, not the raw one
  d_loss = lambda d, vectors: spec.game.d_loss(spec, spectral.normalise(d, vectors), state.g_params,
                                               {'image': batch[0]}, key_d)[0]
  grads = jax.grad(d_loss)(state.d_params, after_d.d_sn)
  raw = jax.grad(d_loss)(state.d_params, None)
  updates, _ = spec.d_tx.update(grads, state.d_opt_state, state.d_params)
  chex.assert_trees_all_close(after_d.d_params, optax.apply_updates(state.d_params, updates), rtol=1e-4, atol=1e-6)
  assert not np.allclose(grads['params']['Dense_0']['kernel'], raw['params']['Dense_0']['kernel'])
  # G's update: its loss against the normalised D after D's update
  g_loss = lambda g: spec.game.g_loss(spec, g, step.discriminator_params(after_d), {'image': batch[0]}, key_g)[0]
  updates, _ = spec.g_tx.update(jax.grad(g_loss)(after_d.g_params), after_d.g_opt_state, after_d.g_params)
  chex.assert_trees_all_close(new.g_params, optax.apply_updates(after_d.g_params, updates), rtol=1e-4, atol=1e-6)


def test_trained_d_layers_stay_near_unit_spectral_norm():
  """Over 300 steps of the ring: each normalised weight matrix's largest singular value (SVD)
  stays near 1, one power iteration per update tracking the moving weights."""
  exp = _ring(True)
  fn = jax.jit(functools.partial(step.train_steps, exp.spec))
  state = exp.init_state
  batches = np.random.default_rng(1).normal(size=(300, 1, 256, 2)).astype(np.float32) * 2
  state, _ = fn(state, batches)
  moved = np.abs(state.d_params['params']['Dense_0']['kernel'] - exp.init_state.d_params['params']['Dense_0']['kernel'])
  assert moved.max() > 0.05  # D did train
  flat = jax.tree_util.tree_flatten_with_path(step.discriminator_params(state))[0]
  kernels = [np.asarray(a) for path, a in flat if str(path[-1]) == "['kernel']"]
  assert len(kernels) >= 2
  for k in kernels:
    top = np.linalg.svd(_matrix(k), compute_uv=False)[0]
    assert 0.9 < top < 1.1, top
