"""§7 item 2, learned approximate inference (BiGAN/ALI): the generator player is the pytree
{G, E} under one optimizer, its loss is the two swapped-label terms written out by hand, E's
representation metrics agree with a brute-force computation, a short run teaches E to invert G,
and a resumed run equals an uninterrupted one."""
import chex
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from configs import mnist_bigan, ring2d
from gan_jax import models, step, train
from gan_jax.eval import metrics
from gan_jax.data.synthetic import ring2d_modes
from gan_jax.games import BiGAN
from gan_jax.optim import make_optimizer
from gan_jax.games import players
from tests.conftest import tiny_paper_config

SHAPE = (8, 8, 1)


def _toy_spec():
  adam = make_optimizer(ml_collections.ConfigDict(dict(name='adam', lr=1e-3, b1=0.5, b2=0.999, lr_decay=1.0, min_lr=0.0)), 1)
  return step.GANSpec(models.ToyMLPGenerator(out_shape=SHAPE, output='linear', hidden=32),
                      models.ToyMLPDiscriminator(hidden=32), adam, adam, noise_dim=4, noise='gaussian',
                      game=BiGAN(), e=models.MLPEncoder(code_dim=4, hidden=32), ema_decay=0.9)


def test_generator_player_is_g_and_e_and_its_loss_is_the_swapped_labels():
  spec = _toy_spec()
  state = step.create_state(spec, 0, SHAPE)
  assert set(state.g_params) == {'g', 'e'} and set(state.g_ema) == {'g', 'e'}
  x = jax.random.uniform(jax.random.PRNGKey(1), (16,) + SHAPE)
  key = jax.random.PRNGKey(2)
  z = players.noise(spec, players.example_keys(spec, key, 16, 0))
  d = lambda images, codes: spec.d.apply(state.d_params, images, None, codes)  # no dropout in toy D
  by_hand = lambda p: (jnp.mean(-jax.nn.log_sigmoid(d(spec.g.apply(p['g'], z), z)))        # G: call me data
                       + jnp.mean(-jax.nn.log_sigmoid(-d(x, spec.e.apply(p['e'], x)))))     # E: call me a sample
  grads = jax.grad(lambda p: spec.game.g_loss(spec, p, state.d_params, {'image': x}, key)[0])(state.g_params)
  chex.assert_trees_all_close(grads, jax.grad(by_hand)(state.g_params), rtol=1e-5, atol=1e-7)
  assert all(float(jnp.abs(g).max()) > 0 for g in jax.tree.leaves(grads['e']))  # E learns from D
  # one step moves both players and D; samples come from G alone
  new, _ = jax.jit(lambda s, b: step.train_step(spec, s, b))(state, x[None])
  for name in ('g', 'e'):
    assert not np.allclose(jax.tree.leaves(new.g_params[name])[0], jax.tree.leaves(state.g_params[name])[0])
  sampled = step.make_sampler(spec)(new.g_params, z)
  np.testing.assert_array_equal(sampled, spec.g.apply(new.g_params['g'], z))


def test_nearest_neighbour_and_probe_accuracy_against_brute_force():
  rng = np.random.default_rng(0)
  centres = rng.normal(size=(10, 6)) * 3
  train_y, test_y = rng.integers(0, 10, 500), rng.integers(0, 10, 200)
  train_x = centres[train_y] + rng.normal(size=(500, 6))
  test_x = centres[test_y] + rng.normal(size=(200, 6))
  d = ((test_x[:, None] - train_x[None]) ** 2).sum(-1)
  brute = float(np.mean(train_y[d.argmin(1)] == test_y))
  assert metrics.nearest_neighbour_accuracy(train_x, train_y, test_x, test_y, chunk=64) == brute
  assert brute > 0.8
  assert metrics.linear_probe_accuracy(train_x, train_y, test_x, test_y) > 0.85
  shuffled = rng.permutation(train_y)  # labels unrelated to the features: chance
  assert metrics.nearest_neighbour_accuracy(train_x, shuffled, test_x, test_y) < 0.25
  assert metrics.linear_probe_accuracy(train_x, shuffled, test_x, test_y) < 0.25


def _tiny(mnist_dir, tfds_dir, steps):
  c = tiny_paper_config(mnist_bigan.get_config())
  c.model.e_kwargs.hidden = 64
  c.train.num_steps, c.train.steps_per_call = steps, 1
  c.data.manual_dir, c.data.data_dir, c.mesh.num_devices = mnist_dir, tfds_dir, 1
  c.log_every_steps = c.eval_every_steps = c.checkpoint_every_steps = 10
  return c


def test_bigan_run_resumed_equals_uninterrupted_bit_for_bit(mnist_dir, tfds_dir, tmp_path):
  whole = train.train_and_evaluate(_tiny(mnist_dir, tfds_dir, 20), str(tmp_path / 'whole'))
  train.train_and_evaluate(_tiny(mnist_dir, tfds_dir, 10), str(tmp_path / 'split'))
  resumed = train.train_and_evaluate(_tiny(mnist_dir, tfds_dir, 20), str(tmp_path / 'split'))
  chex.assert_trees_all_equal(whole, resumed)
  assert set(resumed.g_params) == {'g', 'e'}


def test_a_short_run_teaches_e_to_invert_g(tmp_path):
  """The metric of item 2 in miniature: on the 8-mode ring, modes standing for classes, a
  reconstruction G(E(x)) lands in x's own mode (the MNIST run's reconstruction accuracy). A 2-d z
  as the data's dimension (with 16, 2,000 steps collapsed G onto few modes)."""
  c = ring2d.get_config()
  c.train.game, c.model.noise_dim, c.model.e_kwargs.hidden = 'bigan', 2, 128
  c.train.num_steps, c.mesh.num_devices = 1500, 1
  c.log_every_steps = c.eval_every_steps = c.checkpoint_every_steps = 1500
  final = train.train_and_evaluate(c, str(tmp_path / 'run'))
  exp = train.setup(c)
  x = exp.train_source.read_all()[:2000]
  modes = ring2d_modes()
  nearest = lambda v: np.argmin(((np.asarray(v)[:, None] - modes[None]) ** 2).sum(-1), axis=1)
  def same_mode(players):
    return float(np.mean(nearest(exp.spec.g.apply(players['g'], exp.spec.e.apply(players['e'], x))) == nearest(x)))
  before, after = same_mode(exp.init_state.g_params), same_mode(final.g_params)
  assert before < 0.3 and after > 0.6, (before, after)  # chance: 1/8
