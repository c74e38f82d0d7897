"""§7 item 1, the conditional model p(x | y): the label reaches both players (shapes, parameters,
outputs), travels with its image through the pipeline and resume, and a short conditional run puts
each class where the data has it."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import mnist_conditional, mnist_dcgan_conditional
from gan_jax import models, train
from gan_jax.eval import evaluate
from gan_jax.data import pipeline, synthetic
from gan_jax.games import players
from tests.conftest import tiny_paper_config
from tests.test_launch import ring


def _labels(n, c=10):
  return jnp.arange(n, dtype=jnp.int32) % c


@pytest.mark.parametrize('name,shape', [('paper', (28, 28, 1)), ('dcgan', (28, 28, 1)), ('dcgan', (32, 32, 3))])
def test_conditional_players_take_the_label(name, shape):
  if name == 'dcgan':
    c = mnist_dcgan_conditional.get_config()
    c.model.g_kwargs.width = c.model.d_kwargs.width = 8
  else:
    c = tiny_paper_config(mnist_conditional.get_config())
  g, d = models.make_models(c.model, shape)
  z, y = jnp.ones((4, 100)), _labels(4)
  # jitted: op by op, each initialiser and layer compiles on its own
  gp = jax.jit(g.init)(jax.random.PRNGKey(0), z, y)
  dp = jax.jit(d.init)(jax.random.PRNGKey(1), jnp.zeros((4,) + shape), y)
  g_apply, d_apply = jax.jit(g.apply), jax.jit(d.apply)
  x = g_apply(gp, z, y)
  assert x.shape == (4,) + shape and d_apply(dp, x, y).shape == (4,)
  # the same z asked for other classes gives other images; D scores the same image differently
  assert not np.allclose(x, g_apply(gp, z, (y + 1) % 10), rtol=1e-3, atol=0)
  assert not np.allclose(d_apply(dp, x, y), d_apply(dp, x, (y + 3) % 10), rtol=1e-3, atol=0)
  # z and the one-hot label into G's first layer, side by side
  assert [p.shape[0] for p in jax.tree.leaves(gp) if p.ndim == 2] [0] == 100 + 10
  if name == 'dcgan':  # projection: one embedding row per class, as wide as D's last features
    embed = dp['params']['Embed_0']['embedding']
    assert embed.shape[0] == 10 and embed.shape[1] == dp['params']['Dense_0']['kernel'].shape[0]
  unconditional = models.make_models(_unconditional(c).model, shape)[0]
  up = jax.eval_shape(unconditional.init, jax.random.PRNGKey(0), z)
  assert [p.shape[0] for p in jax.tree.leaves(up) if p.ndim == 2][0] == 100


def _unconditional(c):
  c = c.copy_and_resolve_references()
  c.model.num_classes = 0
  return c


def test_labels_travel_with_their_examples_through_the_pipeline():
  n = 103
  source = synthetic.ArraySource(np.arange(n, dtype=np.float32)[:, None], (np.arange(n) * 7 % 10).astype(np.int32))
  make = lambda: pipeline.train_iterator(source, 10, k=2, num_devices=2, device_offset=0,
                                         local_devices=2, seed=3, labels=True)
  it = make()
  for _ in range(12):  # past an epoch
    batch = next(it)
    assert batch['image'].shape == (2, 2, 5, 1) and batch['label'].shape == (2, 2, 5)
    np.testing.assert_array_equal(batch['label'], batch['image'][..., 0].astype(int) * 7 % 10)
  saved, expected = it.get_state(), [next(it) for _ in range(3)]
  resumed = make()
  resumed.set_state(saved)
  for e in expected:
    chex.assert_trees_all_equal(next(resumed), e)


def _conditional_ring(steps):
  every = 10 if steps <= 20 else steps // 2  # a checkpoint where the resume test splits
  c = ring(steps, log_every_steps=every, eval_every_steps=every, checkpoint_every_steps=every)
  c.model.num_classes = 8  # the mode each point was drawn from
  return c


def test_a_short_conditional_run_puts_each_class_at_its_mode(tmp_path):
  """Asked for mode y, G puts its good samples at mode y, and every mode gets some: the same 1,000
  steps of the unconditional pair cover no mode at this quality (measured: 0 of 8)."""
  final = train.train_and_evaluate(_conditional_ring(1000), str(tmp_path / 'run'))
  exp = train.setup(_conditional_ring(1000), training=False)
  samples = evaluate.generate(exp, final.g_params, 4000, seed=11)
  result = evaluate.evaluate_samples(exp, samples, sample_labels=players.sample_labels(exp.spec, 4000))
  assert result['modes_covered'] == 8, result
  assert result['conditional_accuracy'] > 0.15, result
  assert result['conditional_accuracy'] > 0.95 * result['high_quality_fraction'], result  # none at another mode


def test_conditional_run_resumed_equals_uninterrupted_bit_for_bit(tmp_path):
  whole = train.train_and_evaluate(_conditional_ring(20), str(tmp_path / 'whole'))
  train.train_and_evaluate(_conditional_ring(10), str(tmp_path / 'split'))
  resumed = train.train_and_evaluate(_conditional_ring(20), str(tmp_path / 'split'))
  chex.assert_trees_all_equal(whole, resumed)


def test_unlabelled_data_is_refused_in_one_line():
  from gan_jax.errors import UserError
  c = _conditional_ring(10)
  c.data.name, c.data.num_examples = 'gaussian1d', 1000
  with pytest.raises(UserError, match='model.num_classes=8 conditions on class labels'):
    train.setup(c)
  c = _conditional_ring(10)
  c.model.num_classes = 4
  with pytest.raises(UserError, match='set --config.model.num_classes=8'):
    train.setup(c)
