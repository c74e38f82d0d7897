"""An experiment built from its config alone: the devices, the data (the training split and its
grain iterator, or for evaluation only the shapes of the evaluation split), the players, the game
and the state's shapes (the initial state is computed when a run starts without a checkpoint).
`train.py` trains it; evaluation (`gan_jax/eval/`) reads it."""
import dataclasses
import functools

import jax
import numpy as np

from gan_jax import augment, data, games, parallel, step
from gan_jax.errors import UserError
from gan_jax.eval import folder_metrics
from gan_jax.models import make_encoder, make_models, needs_init_batch
from gan_jax.optim import make_optimizer
from gan_jax.validate import validate_config


@dataclasses.dataclass
class Experiment:
  config: object
  devices: list  # this host's
  dp: parallel.DataParallel  # how the step runs over the devices (mesh.api)
  spec: step.GANSpec
  train_source: object  # random access to the training split (data.open_split)
  iterator: object      # grain's iterator of train_step batches; its state is checkpointed
  state_shapes: step.GANState  # the state's structure, shapes and dtypes: what a checkpoint is restored into
  sample: callable  # step.make_sampler: G(z) or G(z, y), compiled once per run
  labelled: object = None  # the semi-supervised game's labelled indices into the training split
  make_init_state: callable = None  # computes the initial state (training); None: only shapes

  @functools.cached_property
  def init_state(self) -> step.GANState:
    """The initial state, computed when first asked for: a run that resumes restores into
    `state_shapes` and never compiles it (1-6 s of XLA compiling on a CPU core). Without
    make_init_state (evaluation), the shapes."""
    return self.state_shapes if self.make_init_state is None else self.make_init_state()


def setup(config, training: bool = True) -> Experiment:
  """Everything a run needs, built from the config alone (nothing written but the data cache).
  With training=False (evaluation, pictures) the training split is not opened: the models take
  their shapes from the evaluation split, and the parameters come from a checkpoint."""
  validate_config(config)
  devices = parallel.select_devices(config.mesh)
  dp = parallel.DataParallel(devices, config.mesh.api)
  if not training:
    split = config.data.eval_split or config.data.train_split  # a folder holds nothing out
    shape_source = data.open_split(config.data, split, config.seed)
    spec, shapes = build_models(config, shape_source, for_restore=True)
    return Experiment(config, devices, dp, spec, None, None, shapes, step.make_sampler(spec))
  num_global = dp.num_devices
  source = data.open_split(config.data, config.data.train_split, config.seed)
  labelled = labelled_indices(config, source, num_global)
  iterator = data.pipeline.train_iterator(
      source, config.train.batch_size, config.train.k, num_global,
      device_offset=dp.device_offset, local_devices=len(devices),
      # data.prefetch counts dispatches: each needs steps_per_call batches, and a smaller read-ahead
      # left the device idle while the main thread read the rest (measured 89% of a resident batch)
      seed=config.seed, prefetch=config.data.prefetch * config.train.steps_per_call,
      labels=bool(config.model.num_classes), labelled=labelled)
  if config.data.name == 'folder':  # a KID subset larger than the folder fails now, not at the first evaluation
    folder_metrics.subset_size(config, len(source), config.eval.periodic_num_samples)
  spec, shapes = build_models(config, source, for_restore=True)
  check_d_init_examples(config, spec.d, source)  # now, not when the initial state is computed
  return Experiment(config, devices, dp, spec, source, iterator, shapes, step.make_sampler(spec), labelled,
                    functools.partial(initial_state, config, spec, source))


def build_models(config, source, for_restore: bool = False):
  """(GANSpec, initial GANState) for data shaped like `source`'s examples; `for_restore`: only
  the state's structure matters (a checkpoint fills it), so the state holds only shapes."""
  check_labels(config, source)
  if config.train.get('augment') and len(source.shape) != 3:
    raise UserError(f'train.augment={config.train.augment!r} transforms images (height, width, channels); '
                    f'{config.data.name} examples have shape {tuple(source.shape)}.')
  g, d = make_models(config.model, source.shape)
  d_updates_per_epoch = data.pipeline.batches_per_epoch(source, config.train.batch_size)
  spec = step.GANSpec(
      g=g, d=d, noise_dim=config.model.noise_dim, noise=config.model.noise,
      g_tx=make_optimizer(config.optim.g, max(1, d_updates_per_epoch // config.train.k)),
      d_tx=make_optimizer(config.optim.d, max(1, d_updates_per_epoch)),
      g_loss=config.train.g_loss, d_loss=config.train.get('d_loss', 'cross_entropy'), k=config.train.k,
      augment=augment.parse(config.train.get('augment', '')), update=config.train.update_mode,
      ema_decay=config.train.ema_decay, ema_start_step=config.train.ema_start_step,
      d_ema_decay=config.train.d_ema_decay, data_scale=config.data.scale,
      num_classes=config.model.num_classes, game=games.make_game(config.train.game),
      e=make_encoder(config.model) if config.train.game == 'bigan' else None,
      unsupervised_weight=config.train.unsupervised_weight, r1_gamma=config.train.get('r1_gamma', 0.0),
      r1_examples=config.train.get('r1_examples', 0), spectral_norm=config.train.get('spectral_norm', False))
  if for_restore:
    return spec, step.state_shapes(spec, config.seed, source.shape, jax.local_devices()[0])
  return spec, initial_state(config, spec, source)


def initial_state(config, spec, source) -> step.GANState:
  """The initial GANState of `spec`'s players for data like `source`'s (its marginals or a batch
  of it, where the model initialises from data)."""
  data_mean = source.mean() if config.model.g_output_bias == 'marginals' else None
  return step.create_state(spec, config.seed, source.shape, data_mean, d_init_batch(config, spec.d, source))


def check_d_init_examples(config, d, source) -> None:
  n = config.model.d_init_examples
  if needs_init_batch(d) and not 2 <= n <= len(source):
    raise UserError(f'model.d_init_examples={n}: the data-dependent initialisation of '
                    f'model.discriminator={config.model.discriminator} needs 2 to {len(source)} training examples.')


def d_init_batch(config, d, source):
  """model.d_init_examples training examples drawn with the seed, for a D that initialises its
  weights from data (Salimans et al.: 500 of a random permutation of the training set); None for
  any other D."""
  if not needs_init_batch(d):
    return None
  check_d_init_examples(config, d, source)
  rows = np.random.default_rng([config.seed, 0xD1]).permutation(len(source))[:config.model.d_init_examples]
  return source.read(np.sort(rows))


def labelled_indices(config, source, num_devices: int):
  """The semi-supervised game's labelled examples (data.num_labelled, from each class alike,
  drawn with the seed), or None for the other games."""
  if config.train.game != 'semi_supervised':
    return None
  n = config.data.num_labelled
  if source.labels is None or len(source.labels) == 0 or np.min(source.labels) < 0:
    raise UserError(f'train.game=semi_supervised needs labels, and data.name={config.data.name} has none.')
  if n % num_devices:
    raise UserError(f'data.num_labelled={n} is split over the {num_devices} devices in use: use a multiple of {num_devices}.')
  return data.pipeline.labelled_subset(source.labels, n, config.seed)


def check_labels(config, source) -> None:
  """A conditional model (model.num_classes > 0) needs labels, each in [0, num_classes)."""
  n = config.model.num_classes
  if not n:
    return
  labels = source.labels
  if labels is None or len(labels) == 0 or np.min(labels) < 0:
    raise UserError(f'model.num_classes={n} conditions on class labels, and data.name={config.data.name} '
                    'has none; use a labelled dataset or set --config.model.num_classes=0.')
  if np.max(labels) >= n:
    raise UserError(f'model.num_classes={n}, but data.name={config.data.name} has label '
                    f'{int(np.max(labels))}; set --config.model.num_classes={int(np.max(labels)) + 1}.')
