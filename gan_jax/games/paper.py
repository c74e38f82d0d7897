"""The paper's game (Eq. 1), and the conditional game of its §7 item 1."""
import jax
import jax.numpy as jnp

from gan_jax import objective
from gan_jax.games import players


class PaperGame:
  """The paper's game: D tells data from G(z), G fools D (Eq. 1), with the released code's loss
  scale; with `spec.num_classes` the conditional game of §7 item 1, where the batch's labels
  condition D on data and G and D on samples of uniformly drawn classes.

  A game names what its players are and what each minimises; the one `train_step` runs any game
  (gan_jax/games/ holds the other §7 variants), so no variant copies the step. Its methods:
  `init` the players' parameters (D's from `d_init_batch` when it initialises from data), `d_loss` and `g_loss` (the loss and its metrics: `value`,
  `d_real`, `d_fake` for the progress line) on one real minibatch (a dict: 'image', maybe
  'label') and a key, `sample` G's output for evaluation, `generator_params` the G inside the
  generator player's parameters.
  """

  def init(self, spec, g_key, d_key, data_shape, d_init_batch=None):
    labels = lambda n: players.conditions(jnp.zeros((n,), jnp.int32) if spec.num_classes else None)
    g_params = spec.g.init(g_key, jnp.zeros((1, spec.noise_dim)), *labels(1))
    if d_init_batch is None:
      d_params = spec.d.init({'params': d_key}, jnp.zeros((1,) + tuple(data_shape)), *labels(1), train=False)
    else:  # a D that initialises from data sees real examples in training mode (its noise on)
      d_params = spec.d.init({'params': d_key, 'dropout': jax.random.fold_in(d_key, 1)}, d_init_batch,
                             *labels(len(d_init_batch)), train=True)
    return g_params, d_params

  def d_loss(self, spec, d_params, g_params, real, key):
    b = real['image'].shape[0]
    keys, labels = players.example_keys(spec, key, b, 1), real.get('label')
    d_loss = objective.DISCRIMINATOR_LOSSES[spec.d_loss]
    d_real = lambda x, n=b: players.discriminate(spec, d_params, x, keys[:n], None if labels is None else labels[:n])
    fake_logits = players.fake_logits(spec, g_params, d_params, key, b)
    if not spec.r1_gamma:
      real_logits = d_real(real['image'])
      return d_loss(real_logits, fake_logits), players.logit_metrics(real_logits, fake_logits)
    n = min(spec.r1_examples or b, b)
    if n == b:  # one forward pass gives the logits and, by its VJP, ∇ₓD of each (independent) example
      real_logits, vjp = jax.vjp(d_real, real['image'])
    else:  # the penalty's mean estimated on the first n examples: its double backward costs n/b
      real_logits = d_real(real['image'])
      _, vjp = jax.vjp(lambda x: d_real(x, n), real['image'][:n])
    penalty = objective.r1_penalty(vjp(jnp.ones((n,), real_logits.dtype))[0], spec.r1_gamma)
    metrics = {**players.logit_metrics(real_logits, fake_logits), 'r1': penalty}
    return d_loss(real_logits, fake_logits) + penalty, metrics

  def g_loss(self, spec, g_params, d_params, real, key):
    fake_logits = players.fake_logits(spec, g_params, d_params, key, real['image'].shape[0])
    return objective.GENERATOR_LOSSES[spec.g_loss](fake_logits), {}

  def sample(self, spec, g_params, z, labels):
    return spec.g.apply(g_params, z, *players.conditions(labels))

  def generator_params(self, g_params):
    return g_params

  def __hash__(self):
    return hash(type(self))

  def __eq__(self, other):
    return type(self) is type(other)
