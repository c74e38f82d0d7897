"""Model output shapes, ranges, initialisation and dropout behaviour."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import cifar10, fashion_mnist_dcgan, mnist, mnist_dcgan, mnist_semi_supervised, ring2d
from gan_jax import models, step
from gan_jax.errors import UserError
from gan_jax.optim import make_optimizer
from tests.conftest import dispatches, flat_draw, jit_apply, tiny_paper_config


@pytest.mark.parametrize('get_config,shape', [(mnist.get_config, (28, 28, 1)),
                                              (cifar10.get_config, (32, 32, 3)),
                                              (mnist_dcgan.get_config, (28, 28, 1)),
                                              (fashion_mnist_dcgan.get_config, (28, 28, 1)),
                                              (ring2d.get_config, (2,))])
def test_shapes_and_ranges(get_config, shape):
  c = get_config()
  g, d = models.make_models(c.model, shape)
  z = models.sample_noise(jax.random.PRNGKey(0), (8, c.model.noise_dim), c.model.noise)
  g_params = jax.jit(g.init)(jax.random.PRNGKey(1), z)
  x = jax.jit(g.apply)(g_params, z)
  assert x.shape == (8,) + shape
  if c.model.g_output == 'sigmoid':
    assert 0 <= float(x.min()) and float(x.max()) <= 1
  if c.model.g_output == 'tanh':
    assert -1 <= float(x.min()) and float(x.max()) <= 1
  d_params = jax.jit(d.init)(jax.random.PRNGKey(2), x)
  logits = jax.jit(d.apply)(d_params, x)
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


def test_discriminator_dropout_rates_and_inverted_scales_per_layer():
  """mnist.yaml: keep 0.8 of D's input (scale 1.25) and 0.5 of each later layer's input (scale
  2). Each dropout's output against its input, read from the module's intermediates."""
  c = mnist.get_config()
  d = models.PaperMaxoutDiscriminator(**c.model.d_kwargs)
  x = jax.random.uniform(jax.random.PRNGKey(0), (256, 784), minval=0.1, maxval=1.0)
  params = d.init(jax.random.PRNGKey(1), x)
  _, inter = d.apply(params, x, train=True, rngs={'dropout': jax.random.PRNGKey(2)},
                     capture_intermediates=True, mutable=['intermediates'])
  inter = inter['intermediates']
  inputs = {'Dropout_0': x, 'Dropout_1': inter['Maxout_0']['__call__'][0], 'Dropout_2': inter['Maxout_1']['__call__'][0]}
  for name, keep in (('Dropout_0', 0.8), ('Dropout_1', 0.5), ('Dropout_2', 0.5)):
    before, after = np.asarray(inputs[name]), np.asarray(inter[name]['__call__'][0])
    live = np.abs(before) > 1e-6
    ratio = after[live] / before[live]
    kept = np.isclose(ratio, 1 / keep, rtol=1e-5)
    assert np.all(kept | (ratio == 0)), name  # each unit is dropped or scaled by 1/keep, nothing else
    assert abs(kept.mean() - keep) < 0.02, (name, kept.mean())


def test_improved_gan_d_noise_per_layer_only_in_training():
  """Salimans et al.'s D: N(0, 0.3²) added to the pixels and N(0, 0.5²) to each hidden layer in
  training, read from the noise layers' own inputs and outputs; nothing added in evaluation."""
  c = mnist_semi_supervised.get_config()
  d = models.make_models(c.model, (28, 28, 1))[1]
  apply = jit_apply(d)
  x = flat_draw(jax.random.uniform, jax.random.PRNGKey(0), (64, 28, 28, 1))
  params = jax.jit(d.init)(jax.random.PRNGKey(1), x)
  assert apply(params, x).shape == (64, 10)
  np.testing.assert_array_equal(apply(params, x), apply(params, x))
  _, inter = apply(params, x, train=True, rngs={'dropout': jax.random.PRNGKey(2)},
                   capture_intermediates=True, mutable=('intermediates',))
  inter = inter['intermediates']
  layers = [f'WeightNormDense_{i}' for i in range(5)]
  widths = [np.asarray(inter[n]['__call__'][0]).shape[-1] for n in layers]
  assert widths == [1000, 500, 250, 250, 250]
  inputs = [x.reshape(64, -1)] + [nn.relu(inter[n]['__call__'][0]) for n in layers]
  for i, (before, stddev) in enumerate(zip(inputs, [0.3] + [0.5] * 5)):
    added = np.asarray(inter[f'GaussianNoise_{i}']['__call__'][0]) - np.asarray(before)
    assert abs(added.std() - stddev) < 0.01 and abs(added.mean()) < 0.01, (i, added.std())
  np.testing.assert_array_equal(inter['features'][0], nn.relu(inter['WeightNormDense_4']['__call__'][0]))


def test_improved_gan_d_weights_are_normalised():
  """Weight normalisation: scaling a layer's kernel, or one unit's weight vector, leaves D's
  output unchanged (w/‖w‖ per unit); scaling the learned norm changes it."""
  d = models.ImprovedGANDiscriminator(hidden=(32, 16), num_outputs=10)
  x = jax.random.uniform(jax.random.PRNGKey(0), (8, 784))
  params = d.init(jax.random.PRNGKey(1), x)
  out = d.apply(params, x)
  kernel = params['params']['WeightNormDense_0']['kernel']
  scaled = jax.tree.map(lambda v: v, params)
  scaled['params']['WeightNormDense_0']['kernel'] = kernel.at[:, 3].multiply(7.0) * 0.2
  np.testing.assert_allclose(d.apply(scaled, x), out, rtol=1e-5, atol=1e-6)
  norm = params['params']['WeightNormDense_0']['scale']
  rescaled = jax.tree.map(lambda v: v, params)
  rescaled['params']['WeightNormDense_0']['scale'] = norm * 2
  assert not np.allclose(d.apply(rescaled, x), out, atol=1e-3)


def test_improved_gan_d_refuses_what_it_cannot_see():
  from gan_jax import validate
  c = mnist_semi_supervised.get_config()
  c.model.num_classes = 10
  c.train.game = 'gan'
  with pytest.raises(UserError, match='model.discriminator=improved_gan sees images alone'):
    validate.validate_config(c)


def test_unknown_model_name_is_a_clear_error():
  c = mnist.get_config()
  c.model.generator = 'resnet9000'
  with pytest.raises(Exception, match="model.generator='resnet9000' is unknown"):
    models.make_models(c.model, (28, 28, 1))


def _hand_weight_norm_init(x, kernels):
  """Salimans et al.'s data-dependent init written out in numpy (their DenseLayer with
  init=True): per layer, the normalised pre-activations y = h·v/‖v‖ on the batch give
  g = 1/std(y), b = −mean(y)/std(y); the next layer sees relu(g·y + b)."""
  h, out = np.asarray(x, np.float64).reshape(len(x), -1), []
  for i, v in enumerate(kernels):
    v = np.asarray(v, np.float64)
    y = h @ (v / np.sqrt((v ** 2).sum(0)))
    mean, std = y.mean(0), y.std(0)
    out.append((1 / std, -mean / std))
    h = y / std - mean / std
    h = np.maximum(h, 0) if i < len(kernels) - 1 else h
  return out


def test_improved_gan_d_data_dependent_init_against_a_hand_computation():
  """Initialised on a batch, each weight-normalised layer's scale and bias are 1/std and
  −mean/std of its pre-activations there (numpy, from the initial directions), so every unit
  starts at mean 0 and variance 1 on that batch; with the noise on (as theirs), the same holds on
  the init pass's own noise draw. The directions are v ~ N(0, 0.1²)."""
  d = models.ImprovedGANDiscriminator(hidden=(300, 200), num_outputs=10, input_noise=0.0, hidden_noise=0.0)
  x = jax.random.uniform(jax.random.PRNGKey(0), (500, 784))
  params = d.init({'params': jax.random.PRNGKey(1), 'dropout': jax.random.PRNGKey(2)}, x, train=True)['params']
  names = [f'WeightNormDense_{i}' for i in range(3)]
  kernels = [params[n]['kernel'] for n in names]
  assert [k.shape for k in kernels] == [(784, 300), (300, 200), (200, 10)]
  assert abs(float(np.std(kernels[0])) - 0.1) < 0.002 and abs(float(np.mean(kernels[0]))) < 0.001
  for n, (scale, bias) in zip(names, _hand_weight_norm_init(x, kernels)):
    np.testing.assert_allclose(params[n]['scale'], scale, rtol=2e-4)
    np.testing.assert_allclose(params[n]['bias'], bias, rtol=2e-4, atol=2e-4)
  # with the noise on: the pre-activations of the init pass (same noise key) are standardised
  noisy = models.ImprovedGANDiscriminator(hidden=(300, 200), num_outputs=10)
  rngs = {'params': jax.random.PRNGKey(1), 'dropout': jax.random.PRNGKey(2)}
  variables = noisy.init(rngs, x, train=True)
  _, inter = noisy.apply(variables, x, train=True, rngs={'dropout': rngs['dropout']},
                         capture_intermediates=True, mutable=['intermediates'])
  for n in names:
    pre = np.asarray(inter['intermediates'][n]['__call__'][0], np.float64)
    np.testing.assert_allclose(pre.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(pre.std(0), 1, rtol=1e-3)
  # without data (or in evaluation mode) the scales start at 1 and the biases at 0
  plain = d.init(jax.random.PRNGKey(1), x)['params']
  np.testing.assert_array_equal(plain[names[0]]['scale'], np.ones(300))
  np.testing.assert_array_equal(plain[names[0]]['bias'], np.zeros(300))


@pytest.mark.compile_bound
def test_semi_supervised_step_moves_only_the_trainable_scales():
  """Their hidden layers' scales are not trainable: after a training step of the config's game
  they are bit for bit where the data-dependent init put them, while the output layer's scales,
  every direction and bias, and G's batch-norm shifts move. With train_hidden_scales=True they
  move too."""
  from gan_jax.games import semi_supervised
  rng = np.random.default_rng(0)
  shape = (28, 28, 1)
  batch = {'image': rng.uniform(size=(1, 1, 32) + shape).astype(np.float32),  # [steps, k, b, ...]
           'labelled_image': rng.uniform(size=(1, 1, 8) + shape).astype(np.float32),
           'labelled_label': rng.integers(0, 10, (1, 1, 8)).astype(np.int32)}

  def one_step(train_hidden_scales):
    # test_semi_supervised's spec and batch shapes, on one device: the step of the False case is
    # the one-device program that test compiles (XLA's cache holds it for whichever runs second)
    c = tiny_paper_config(mnist_semi_supervised.get_config())
    c.model.d_kwargs.train_hidden_scales = train_hidden_scales
    g, d = models.make_models(c.model, shape)
    spec = step.GANSpec(g, d, make_optimizer(c.optim.g, 500), make_optimizer(c.optim.d, 500),
                        noise_dim=c.model.noise_dim, noise=c.model.noise, game=semi_supervised.SemiSupervised())
    state = step.create_state(spec, 0, shape, d_init_batch=rng.uniform(size=(50,) + shape).astype(np.float32))
    return state, dispatches(spec, state, [batch], 1)[0]

  before, after = one_step(False)
  d0, d1 = before.d_params['params'], after.d_params['params']
  for i in range(2):
    np.testing.assert_array_equal(d1[f'WeightNormDense_{i}']['scale'], d0[f'WeightNormDense_{i}']['scale'])
    assert not np.allclose(d0[f'WeightNormDense_{i}']['kernel'], d1[f'WeightNormDense_{i}']['kernel'])
    assert not np.allclose(d0[f'WeightNormDense_{i}']['bias'], d1[f'WeightNormDense_{i}']['bias'])
  assert not np.allclose(d0['WeightNormDense_2']['scale'], d1['WeightNormDense_2']['scale'])
  g0, g1 = before.g_params['params'], after.g_params['params']
  assert not np.allclose(g0['BatchNorm_0']['bias'], g1['BatchNorm_0']['bias'])
  assert not np.allclose(g0['out']['scale'], g1['out']['scale'])
  before, after = one_step(True)
  assert not np.allclose(before.d_params['params']['WeightNormDense_0']['scale'],
                         after.d_params['params']['WeightNormDense_0']['scale'])


def test_improved_gan_g_against_a_hand_computation():
  """Their G in numpy: z → Dense (no bias) → (h − mean)/√(var + 1e-6) over the batch, plus a
  shift → softplus, twice → v·g/√(‖v‖² + 1e-6) + b → sigmoid. The batch statistics make each
  sample depend on the others in its batch; z ~ U(0, 1)."""
  g = models.ImprovedGANGenerator(out_shape=(28, 28, 1), hidden=(40, 30))
  z = models.sample_noise(jax.random.PRNGKey(0), (64, 100), 'uniform01')
  assert float(z.min()) >= 0 and float(z.max()) < 1 and abs(float(z.mean()) - 0.5) < 0.01
  initial = jax.jit(g.init)(jax.random.PRNGKey(1), z)['params']
  params = jax.jit(lambda p: jax.tree.map(lambda a: a + 0.1 * jax.random.normal(jax.random.PRNGKey(3), a.shape), p))(initial)
  limit = np.sqrt(6 / (100 + 40))  # Glorot uniform, lasagne's default
  k0 = np.asarray(initial['Dense_0']['kernel'])
  assert k0.shape == (100, 40) and np.abs(k0).max() <= limit and np.abs(k0).max() > 0.95 * limit
  assert set(params) == {'Dense_0', 'BatchNorm_0', 'Dense_1', 'BatchNorm_1', 'out'}
  assert 'bias' not in params['Dense_0'] and 'scale' not in params['BatchNorm_0']
  h = np.asarray(z, np.float64)
  for i in range(2):
    h = h @ np.asarray(params[f'Dense_{i}']['kernel'], np.float64)
    h = (h - h.mean(0)) / np.sqrt(h.var(0) + 1e-6) + np.asarray(params[f'BatchNorm_{i}']['bias'])
    h = np.log1p(np.exp(h))
  v = np.asarray(params['out']['kernel'], np.float64)
  logits = h @ (v * np.asarray(params['out']['scale']) / np.sqrt((v ** 2).sum(0) + 1e-6)) + np.asarray(params['out']['bias'])
  apply = jit_apply(g)
  x = apply({'params': params}, z)
  assert x.shape == (64, 28, 28, 1)
  np.testing.assert_allclose(np.asarray(x).reshape(64, -1), 1 / (1 + np.exp(-logits)), rtol=1e-4, atol=1e-6)
  alone = apply({'params': params}, z[:8])  # other batch statistics: other samples
  assert not np.allclose(alone, x[:8], atol=1e-3)


def test_improved_gan_options_refuse_what_they_cannot_do():
  from configs import mnist_semi_supervised
  from gan_jax import validate
  c = mnist_semi_supervised.get_config()
  c.train.game, c.model.discriminator, c.model.num_classes = 'gan', 'paper_maxout', 10
  with pytest.raises(UserError, match='model.generator=improved_gan takes z alone'):
    validate.validate_config(c)
  c = mnist_semi_supervised.get_config()
  c.optim.d.eps_root = 0.0
  with pytest.raises(UserError, match='optim.d.eps=0.0 and eps_root=0.0 must be >= 0 and not both 0'):
    validate.validate_config(c)
  c = mnist_semi_supervised.get_config()
  c.model.noise = 'uniform_0_1'
  with pytest.raises(UserError, match="model.noise='uniform_0_1' is unknown"):
    validate.validate_config(c)
