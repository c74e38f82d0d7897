"""Model output shapes, ranges, initialisation and dropout behaviour."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from configs import cifar10, mnist, ring2d
from gan_jax import models, step
from gan_jax.optim import make_optimizer


@pytest.mark.parametrize('get_config,shape', [(mnist.get_config, (28, 28, 1)),
                                              (cifar10.get_config, (32, 32, 3)),
                                              (ring2d.get_config, (2,))])
def test_shapes_and_ranges(get_config, shape):
  c = get_config()
  g, d = models.make_models(c.model, shape)
  z = models.sample_noise(jax.random.PRNGKey(0), (8, c.model.noise_dim), c.model.noise)
  g_params = g.init(jax.random.PRNGKey(1), z)
  x = g.apply(g_params, z)
  assert x.shape == (8,) + shape
  if c.model.g_output == 'sigmoid':
    assert 0 <= float(x.min()) and float(x.max()) <= 1
  if c.model.g_output == 'tanh':
    assert -1 <= float(x.min()) and float(x.max()) <= 1
  d_params = d.init(jax.random.PRNGKey(2), x)
  logits = d.apply(d_params, x)
  assert logits.shape == (8,) and np.all(np.isfinite(logits))


def test_paper_model_matches_released_code():
  c = mnist.get_config()
  g, d = models.make_models(c.model, (28, 28, 1))
  spec = step.GANSpec(g, d, make_optimizer(c.optim.g, 500), make_optimizer(c.optim.d, 500), 100)
  mean = np.linspace(0.01, 0.9, 784).reshape(28, 28, 1)
  state = step.create_state(spec, 0, (28, 28, 1), mean)
  gp, dp = state.g_params['params'], state.d_params['params']
  assert [gp[k]['kernel'].shape for k in ('Dense_0', 'Dense_1', 'out')] == [(100, 1200), (1200, 1200), (1200, 784)]
  assert float(jnp.abs(gp['Dense_0']['kernel']).max()) <= 0.05
  assert float(jnp.abs(gp['Dense_0']['kernel']).max()) > 0.049  # uniform(±0.05), not smaller
  np.testing.assert_allclose(jax.nn.sigmoid(gp['out']['bias']), mean.reshape(-1), rtol=1e-5)
  assert dp['Maxout_0']['Dense_0']['kernel'].shape == (784, 240 * 5)
  assert dp['Maxout_1']['Dense_0']['kernel'].shape == (240, 240 * 5)
  assert float(jnp.abs(dp['Maxout_0']['Dense_0']['kernel']).max()) <= 0.005
  # noise is U(-√3, √3)
  z = models.sample_noise(jax.random.PRNGKey(0), (20000,), 'uniform')
  assert np.sqrt(3) - 0.01 < float(z.max()) <= np.sqrt(3) and abs(float(z.var()) - 1) < 0.03


def test_maxout_takes_max_over_pieces():
  layer = models.Maxout(features=3, pieces=4, init_range=1.0)
  x = jax.random.normal(jax.random.PRNGKey(0), (5, 7))
  params = layer.init(jax.random.PRNGKey(1), x)
  dense = params['params']['Dense_0']
  pre = (x @ dense['kernel'] + dense['bias']).reshape(5, 3, 4)
  np.testing.assert_allclose(layer.apply(params, x), pre.max(-1), rtol=1e-6)


def test_discriminator_dropout_only_in_training():
  d = models.PaperMaxoutDiscriminator(units=16)
  x = jax.random.uniform(jax.random.PRNGKey(0), (4, 784))
  params = d.init(jax.random.PRNGKey(1), x)
  assert np.array_equal(d.apply(params, x), d.apply(params, x))
  a = d.apply(params, x, train=True, rngs={'dropout': jax.random.PRNGKey(2)})
  b = d.apply(params, x, train=True, rngs={'dropout': jax.random.PRNGKey(3)})
  assert not np.allclose(a, b)


def test_unknown_model_name_is_a_clear_error():
  c = mnist.get_config()
  c.model.generator = 'resnet9000'
  with pytest.raises(Exception, match="model.generator='resnet9000' is unknown"):
    models.make_models(c.model, (28, 28, 1))
