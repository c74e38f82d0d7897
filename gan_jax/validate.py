"""Config checks that run before anything is read or written, so bad input costs nothing."""
from gan_jax import augment, data, games, models, objective, parallel
from gan_jax.data import pipeline
from gan_jax.errors import UserError

UPDATES = ('alternating', 'simultaneous')
OUTPUTS = ('sigmoid', 'tanh', 'linear')
PLATFORMS = (None, 'cpu', 'gpu', 'cuda', 'rocm', 'tpu')


def validate_config(config) -> None:
  t = config.train
  update = t.update_mode
  d = config.data
  if not d.name:
    raise UserError("data.name is empty; give a tfds image dataset name, 'folder', 'ring2d' or 'gaussian1d'.")
  if d.name == 'folder' and not d.path:
    raise UserError('data.name=folder needs the image folder: --config.data.path=DIR.')
  if d.scale not in pipeline.SCALES:
    raise UserError(f'data.scale={d.scale!r} is unknown; choose one of {pipeline.SCALES}.')
  if d.image_size is not None and d.image_size < 1:
    raise UserError(f'data.image_size={d.image_size} must be a positive size in pixels (or None: as stored).')
  if config.model.g_output_bias not in ('marginals', 'none'):
    raise UserError(f'model.g_output_bias={config.model.g_output_bias!r} is unknown; choose marginals or none.')
  if config.model.g_output_bias == 'marginals' and config.model.generator != 'paper_mlp':
    raise UserError(f'model.g_output_bias=marginals sets one output bias per pixel, which only the '
                    f'paper_mlp G has; with model.generator={config.model.generator} set '
                    '--config.model.g_output_bias=none.')
  if 'dcgan' in (config.model.generator, config.model.discriminator) and d.image_size is not None:
    models.dcgan_layout(d.image_size)  # one line naming the sizes it can make
  if d.prefetch < 0:
    raise UserError(f'data.prefetch={d.prefetch} must be >= 0.')
  if config.model.generator not in models.GENERATORS:
    raise UserError(f'model.generator={config.model.generator!r} is unknown; choose one of {sorted(models.GENERATORS)}.')
  if config.model.discriminator not in models.DISCRIMINATORS:
    raise UserError(f'model.discriminator={config.model.discriminator!r} is unknown; '
                    f'choose one of {sorted(models.DISCRIMINATORS)}.')
  if config.model.num_classes < 0:
    raise UserError(f'model.num_classes={config.model.num_classes} must be >= 0 (0: an unconditional model).')
  if config.model.num_classes and d.name == 'gaussian1d':
    raise UserError(f'model.num_classes={config.model.num_classes} conditions on class labels, and '
                    f'data.name={d.name} has none; set --config.model.num_classes=0.')
  games.make_game(t.game)
  if t.game == 'inpainting' and ('dcgan' in (config.model.generator, config.model.discriminator)
                                 or config.model.num_classes or d.name in data.SYNTHETIC):
    raise UserError('train.game=inpainting conditions the MLP pair (paper_mlp/paper_maxout) on a mask and '
                    'the visible pixels of unlabelled images; choose those models and model.num_classes=0.')
  if t.game == 'semi_supervised' and (config.model.discriminator not in ('paper_maxout', 'improved_gan')
                                      or config.model.num_classes or d.name in data.SYNTHETIC):
    raise UserError('train.game=semi_supervised makes an MLP D a K-class classifier of labelled images; '
                    'choose model.discriminator=improved_gan or paper_maxout and model.num_classes=0.')
  if config.model.discriminator == 'improved_gan' and (config.model.num_classes or t.game in ('bigan', 'inpainting')):
    raise UserError('model.discriminator=improved_gan sees images alone; the conditional model, bigan and '
                    'inpainting give D more: choose paper_maxout for them.')
  if config.model.generator == 'improved_gan' and (config.model.num_classes or t.game == 'inpainting'):
    raise UserError('model.generator=improved_gan takes z alone; the conditional model and inpainting give G '
                    'more: choose paper_mlp for them.')
  if t.game == 'bigan' and ('dcgan' in (config.model.generator, config.model.discriminator)
                            or config.model.num_classes):
    raise UserError('train.game=bigan gives D the pair (x, z), which the MLP discriminators take; '
                    'choose paper_maxout or toy_mlp and model.num_classes=0.')
  if config.model.g_output not in OUTPUTS:
    raise UserError(f'model.g_output={config.model.g_output!r} is unknown; choose one of {OUTPUTS}.')
  if config.mesh.platform not in PLATFORMS:
    raise UserError(f'mesh.platform={config.mesh.platform!r} is unknown; choose one of {PLATFORMS[1:]} '
                    '(or None: JAX\'s default).')
  for key in ('manual_dir', 'cache_dir', 'path'):  # data_dir may be a bucket: it is copied to cache_dir
    where = config.data.get(key)
    if where and '://' in str(where):
      raise UserError(f'data.{key}={where}: this is read from (or written to) local disk; copy it '
                      f'first, e.g. gcloud storage cp -r {where} /local/dir, and pass the local directory.')
  if config.mesh.api not in parallel.APIS:
    raise UserError(f'mesh.api={config.mesh.api!r} is unknown; choose pmap or shard_map.')
  if config.model.noise not in models.NOISES:
    raise UserError(f'model.noise={config.model.noise!r} is unknown; choose one of {models.NOISES}.')
  if t.k < 1:
    raise UserError(f'train.k={t.k}: the discriminator needs at least one update per step (k >= 1).')
  if update not in UPDATES:
    raise UserError(f'train.update_mode={update!r} is unknown; choose one of {UPDATES}.')
  if update == 'simultaneous' and t.k != 1:
    raise UserError(f'train.update_mode=simultaneous updates D and G together, so train.k must be 1 (got {t.k}).')
  if t.g_loss not in objective.GENERATOR_LOSSES:
    raise UserError(f'train.g_loss={t.g_loss!r} is unknown; choose one of {tuple(objective.GENERATOR_LOSSES)}.')
  d_loss = t.get('d_loss', 'cross_entropy')
  if d_loss not in objective.DISCRIMINATOR_LOSSES:
    raise UserError(f'train.d_loss={d_loss!r} is unknown; choose one of {tuple(objective.DISCRIMINATOR_LOSSES)}.')
  if 'hinge' in (d_loss, t.g_loss) and t.game != 'gan':
    raise UserError(f'train.d_loss={d_loss}, train.g_loss={t.g_loss}: the hinge loss is a loss of the paper\'s '
                    f'game (train.game=gan), not of train.game={t.game}.')
  try:
    ops = augment.parse(t.get('augment', ''))
  except ValueError as e:
    raise UserError(f'train.augment={t.augment!r}: {e}.') from None
  if ops and t.game != 'gan':  # the others' D takes a code or a mask that a shift would not move
    raise UserError(f'train.augment={t.augment!r} is for the paper\'s game (train.game=gan), '
                    f'not train.game={t.game}.')
  if t.batch_size < 1 or t.num_steps < 0:
    raise UserError(f'train.batch_size={t.batch_size} must be >= 1 and train.num_steps={t.num_steps} >= 0.')
  for name in ('g', 'd'):
    o = config.optim[name]
    if o.lr <= 0:
      raise UserError(f'optim.{name}.lr={o.lr} must be positive.')
    if o.name not in ('sgd', 'adam'):
      raise UserError(f'optim.{name}.name={o.name!r} is unknown; choose sgd or adam.')
    if o.get('lr_decay', 1.0) < 1.0 or o.get('lr_decay_start', 0) < 0:
      raise UserError(f'optim.{name}.lr_decay={o.lr_decay} must be >= 1 (the rate is divided by it per update) '
                      f'and optim.{name}.lr_decay_start={o.get("lr_decay_start", 0)} >= 0.')
    if int(o.get('lr_decay_every', 1)) != o.get('lr_decay_every', 1) or o.get('lr_decay_every', 1) < 1:
      raise UserError(f'optim.{name}.lr_decay_every={o.lr_decay_every} must be a whole number of updates >= 1.')
    if o.get('weight_decay', 0.0) < 0 or (o.get('weight_decay', 0.0) and o.name != 'adam'):
      raise UserError(f'optim.{name}.weight_decay={o.weight_decay} must be >= 0, and is an option of adam.')
    eps, eps_root = o.get('eps', 1e-8), o.get('eps_root', 0.0)
    if o.name == 'adam' and (eps < 0 or eps_root < 0 or eps == eps_root == 0):
      raise UserError(f'optim.{name}.eps={eps} and eps_root={eps_root} must be >= 0 and not both 0 '
                      '(a zero gradient would give 0/0).')
  if config.eval.periodic_parzen not in ('cheap', 'full'):
    raise UserError(f'eval.periodic_parzen={config.eval.periodic_parzen!r} is unknown; choose cheap or full.')
  if config.eval.split not in ('valid', 'test'):
    raise UserError(f'eval.split={config.eval.split!r} is unknown; choose valid (to choose) or test (to report).')
  if config.sample.generator not in ('eval', 'raw'):
    raise UserError(f'sample.generator={config.sample.generator!r} is unknown; choose eval or raw.')
  if config.eval.classifier_examples < 0:
    raise UserError(f'eval.classifier_examples={config.eval.classifier_examples} must be >= 0 (0: all).')
  if config.eval.pr_k < 1 or config.sample.num_samples < 1:
    raise UserError(f'eval.pr_k={config.eval.pr_k} and sample.num_samples={config.sample.num_samples} must be >= 1.')
  kid = config.eval.get('kid_subset_size')
  if kid is not None and (kid < 2 or kid > min(config.eval.num_samples, config.eval.periodic_num_samples)):
    raise UserError(f'eval.kid_subset_size={kid}: KID compares subsets of that many samples, so it must be at '
                    f'least 2 and at most eval.num_samples={config.eval.num_samples} and '
                    f'eval.periodic_num_samples={config.eval.periodic_num_samples} (None: chosen from them and the folder).')
  if config.eval.fid_num_samples < 10:
    raise UserError(f'eval.fid_num_samples={config.eval.fid_num_samples} must be >= 10 (the Inception '
                    'Score averages 10 splits).')
  if config.eval.inception_weights:
    from gan_jax.eval import fid  # pylint: disable=g-import-not-at-top  (~0.1 s, only when asked for)
    fid.check_weights_path(config.eval.inception_weights)
    if d.name in data.SYNTHETIC or not d.eval_split:
      raise UserError(f'eval.inception_weights: FID compares image samples with data.eval_split, and '
                      f'data.name={d.name} has {"no images" if d.name in data.SYNTHETIC else "none"}.')
  budget = t.time_budget_minutes
  if budget is not None and budget <= 0:
    raise UserError(f'train.time_budget_minutes={budget} must be positive (or None for no budget).')
  if not 0.0 <= t.ema_decay < 1.0:
    raise UserError(f'train.ema_decay={t.ema_decay} must be in [0, 1) (0: no moving average of G).')
  if not 0.0 <= t.get('d_ema_decay', 0.0) < 1.0:
    raise UserError(f'train.d_ema_decay={t.d_ema_decay} must be in [0, 1) (0: no moving average of D).')
  r1 = t.get('r1_gamma', 0.0)
  if r1 < 0:
    raise UserError(f'train.r1_gamma={r1} must be >= 0 (0: no R1 penalty).')
  if t.get('r1_examples', 0) < 0:
    raise UserError(f'train.r1_examples={t.r1_examples} must be >= 0 (0: the whole minibatch).')
  if r1 and t.game != 'gan':
    raise UserError(f'train.r1_gamma={r1}: the R1 penalty is a term of the paper\'s game (train.game=gan), '
                    f'not of train.game={t.game}.')
  if t.get('spectral_norm', False) and t.game != 'gan':
    raise UserError(f'train.spectral_norm=True normalises the D of the paper\'s game (train.game=gan), '
                    f'not of train.game={t.game}.')
  if t.ema_start_step < 0:
    raise UserError(f'train.ema_start_step={t.ema_start_step} must be >= 0 (the step the average of G begins at).')
  _check_batch_norm(config)
  per_call = t.steps_per_call
  if per_call < 1:
    raise UserError(f'train.steps_per_call={per_call} must be >= 1.')
  for key in ('log_every_steps', 'eval_every_steps', 'checkpoint_every_steps'):
    if config[key] < 1 or config[key] % per_call:
      raise UserError(f'{key}={config[key]} must be a positive multiple of train.steps_per_call={per_call}.')
  if t.num_steps % per_call:
    raise UserError(f'train.num_steps={t.num_steps} must be a multiple of train.steps_per_call={per_call}.')


def _check_batch_norm(config) -> None:
  """Options that batch-normalise a player, where the game needs examples to stay independent,
  and BiGAN's bounded code, which must cover the prior's range."""
  m, t = config.model, config.train
  if m.d_kwargs.get('batch_norm', False):
    alone = {'train.r1_gamma > 0 (a gradient per example)': t.get('r1_gamma', 0.0) > 0,
             'figure1.enabled (D on a grid of points)': config.figure1.enabled}
    for what, on in alone.items():
      if on:
        raise UserError(f'model.d_kwargs.batch_norm=True makes D(x) depend on the rest of its batch; {what} '
                        'needs D of each example alone: set one of them off.')
  if m.g_kwargs.get('use_bias', True) is False and m.g_output_bias == 'marginals':
    raise UserError('model.g_kwargs.use_bias=False leaves G no output bias for model.g_output_bias=marginals; '
                    'set --config.model.g_output_bias=none.')
  code = m.get('e_kwargs', {}).get('code', 'linear')
  if code not in ('linear', 'bounded'):
    raise UserError(f'model.e_kwargs.code={code!r} is unknown; choose linear or bounded.')
  if t.game == 'bigan' and code == 'bounded' and m.noise != 'uniform_pm1':
    raise UserError(f'model.e_kwargs.code=bounded gives codes in (-1, 1), where model.noise={m.noise} '
                    'draws z elsewhere too: set --config.model.noise=uniform_pm1.')
