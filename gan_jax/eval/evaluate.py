"""Numbers and pictures from a saved model: `--mode=eval` and `--mode=sample` of launch.py, and
the cheap metrics logged during training.

Image data: the Parzen-window log-likelihood (the paper's Table 1 protocol, `parzen.py`), for
MNIST-like data a convnet classifier's Fréchet distance, score, class coverage and improved
precision/recall, and memorisation. The ring of Gaussians: modes covered and the fraction of
high-quality samples.

Every number is measured against one held-out split: `valid` (data.valid_split, the released
code's train[50000:60000]) for everything that chooses (checkpoints, decays, time to a quality
level: the periodic evaluation during training), `test` (data.eval_split) for the number that is
reported, once (`--mode=eval`, eval.split). Parzen's σ is always chosen on the validation split's
first `parzen.SIGMA_EXAMPLES` images, as the released code did.
"""
import json

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import data, files, progress, step as step_lib
from gan_jax.eval import classifier, figures, folder_metrics, game_metrics, held_out, metrics, parzen
from gan_jax.checkpoint import Checkpoints
from gan_jax.errors import UserError
from gan_jax.models import sample_noise
from gan_jax.games import players

RING_STD = 0.02  # the ring2d source's per-mode standard deviation


def generate(exp, g_params, n: int, seed: int, batch: int = 1000) -> np.ndarray:
  """n fair samples of G, from z drawn with `seed` (a conditional G: each class in turn,
  players.sample_labels)."""
  z = sample_noise(jax.random.PRNGKey(seed), (n, exp.spec.noise_dim), exp.spec.noise)
  labels = players.sample_labels(exp.spec, n)
  part = lambda i: None if labels is None else labels[i:i + batch]
  samples = np.concatenate([np.asarray(exp.sample(g_params, z[i:i + batch], part(i))) for i in range(0, n, batch)])
  if not np.all(np.isfinite(samples)):  # NaN distances would make Parzen report nonsense (~1e3)
    raise UserError(f'the generator produced {int(np.sum(~np.isfinite(samples)))} non-finite values '
                    'in its samples: training diverged before this checkpoint; evaluate an earlier step.')
  return samples


def load_state(exp, workdir: str, step=None, with_clock: bool = False):
  """The newest intact (or the named) checkpoint's state, and its step (and with_clock, its
  training clock). Read-only: it may run beside a training run that is saving."""
  ckpt = Checkpoints(workdir, read_only=True)
  steps = ckpt.all_steps()
  if not steps:
    raise UserError(f'no checkpoint in {ckpt.directory}; train first (--mode=train) or pass the right --workdir.')
  if step is not None and step not in steps:
    raise UserError(f'no checkpoint at step {step} in {ckpt.directory}; there are {sorted(steps)}.')
  step, state, clock = ckpt.restore_newest(exp.config, exp.state_shapes, step=step)
  ckpt.close()
  return (state, step, clock) if with_clock else (state, step)


def _unit(exp, samples):
  return data.to_unit(samples, exp.config.data.scale)


def classifier_metrics(exp, samples, images, labels, cache: dict, split: str, sample_labels=None) -> dict:
  """The classifier's numbers for `samples` against the held-out `images` of `split` (their
  features and the classifier's accuracy on them computed once per `cache`); for a conditional
  G's samples (`sample_labels`, the classes asked for) also conditional_metrics."""
  cfg = exp.config
  params = held_out.load_classifier(cfg, images, labels)
  gen_probs, gen_feats = classifier.batched_predict(params, samples)
  if f'{split}_features' not in cache:
    probs, cache[f'{split}_features'] = classifier.batched_predict(params, images)
    cache[f'{split}_accuracy'] = classifier.accuracy_of(probs, labels)  # one pass for both
  real_feats = cache[f'{split}_features']
  out = {'classifier_accuracy': cache[f'{split}_accuracy'],
         'frechet_distance': metrics.frechet_distance(gen_feats, real_feats),
         'classifier_score': metrics.classifier_score(gen_probs),
         'classes_covered': metrics.classes_covered(gen_probs),
         **metrics.precision_recall_coverage(real_feats, gen_feats, k=cfg.eval.pr_k)}
  if sample_labels is not None:
    out.update(metrics.conditional_metrics(gen_probs, gen_feats, sample_labels, real_feats, labels))
  return out


def memorisation_metrics(exp, samples, held_out, cache: dict, split: str) -> dict:
  """Nearest training image (pixels in [0, 1]) of each sample against that of each held-out
  image, one pass over the training split, chunk by chunk (the held-out pass once per `cache`)."""
  def nearest(queries):
    source = data.open_split(exp.config.data, exp.config.data.train_split, exp.config.seed)
    return metrics.nearest_distances(queries, (data.scale(c, 'unit') for c in source.chunks()))
  if f'{split}_to_train' not in cache:
    cache[f'{split}_to_train'] = nearest(held_out)
  return metrics.memorisation(nearest(samples), cache[f'{split}_to_train'])


def _held_out_split(exp, cache: dict, split: str):
  return held_out.held_out_split(exp.config.data, exp.config.seed, cache, split)


def evaluate_samples(exp, samples, cache=None, split: str = 'test', sample_labels=None) -> dict:
  """Every metric that applies to this dataset, on the full protocol, against the held-out
  `split` ('valid' to choose, 'test' to report); `cache` keeps what is read or computed once.
  `sample_labels`: the classes a conditional G was asked for (adds conditional_metrics)."""
  cfg = exp.config
  if cfg.data.name == 'ring2d':
    return metrics.ring_modes(samples, data.synthetic.ring2d_modes(), RING_STD, labels=sample_labels)
  if cfg.data.name in data.SYNTHETIC or not held_out.has_held_out(cfg.data):
    return {}
  cache = {} if cache is None else cache
  sigma_images = _held_out_split(exp, cache, 'valid')[0][:parzen.SIGMA_EXAMPLES]
  images, labels = _held_out_split(exp, cache, split)
  samples = _unit(exp, samples)
  out = parzen.evaluate(samples, sigma_images, images)
  if images.shape[1:] == (28, 28, 1) and labels is not None:
    out.update(classifier_metrics(exp, samples, images, labels, cache, split, sample_labels))
  out.update(memorisation_metrics(exp, samples, images, cache, split))
  return out


def inception_metrics(exp, g_params, samples, cache: dict, split: str = 'test') -> dict:
  """FID (against the held-out `split`) and Inception Score with pytorch-fid's network
  (`cache['inception']`, there when eval.inception_weights is set) on eval.fid_num_samples
  samples: `samples` themselves when there are that many, as the same seed would draw them again."""
  cfg = exp.config
  if 'inception' not in cache or samples.ndim != 4 or not held_out.has_held_out(cfg.data):
    return {}
  from gan_jax.eval import fid  # pylint: disable=g-import-not-at-top  (only with Inception weights)
  if len(samples) != cfg.eval.fid_num_samples:
    samples = generate(exp, g_params, cfg.eval.fid_num_samples, cfg.seed + 1)
  if f'{split}_fid_reference' not in cache:
    images = _held_out_split(exp, cache, split)[0]
    path = fid.default_stats_path(cfg.data, held_out.split_name(cfg.data, split), images.shape[1:], cache['inception'])
    cache[f'{split}_fid_reference'] = fid.reference_stats(cache['inception'], images, path)
  return fid.scores(cache['inception'], _unit(exp, samples), cache[f'{split}_fid_reference'])


def folder_scores(exp, samples, cache: dict) -> dict:
  """A folder's numbers (folder_metrics.py): samples against the folder's own images; {} for
  other data."""
  return folder_metrics.scores(exp, _unit(exp, samples), cache) if exp.config.data.name == 'folder' else {}


def periodic_metrics(exp, g_params, cache: dict, state=None) -> dict:
  """Numbers for the training log, all on the validation split (they choose; the test split
  is for --mode=eval): 'cheap', Parzen of a small sample on a small validation set (σ chosen
  there too), or ring mode coverage; 'full', every metric of the protocol, keys prefixed valid/.
  With the run's (replicated) `state`, the semi-supervised game also logs D's error rate as a
  classifier (its moving average's, and the raw D's beside, when the run keeps one); other games
  leave it on the devices. The inference game logs E's 1-NN accuracies."""
  cfg = exp.config
  out = {}
  if cfg.data.name == 'folder':  # in pixel space (training loads no Inception network)
    samples = generate(exp, g_params, cfg.eval.periodic_num_samples, cfg.seed + 3)
    out.update({f'folder/{k}': v for k, v in folder_scores(exp, samples, cache).items()})
  if cfg.data.name != 'ring2d' and (cfg.data.name in data.SYNTHETIC or not held_out.has_held_out(cfg.data)):
    return out
  if cfg.train.game == 'semi_supervised' and state is not None:  # what the game is for
    errors = game_metrics.semi_supervised_metrics(exp, exp.dp.unreplicate(state), cache, 'valid')
    out.update({f'valid/{k}': v for k, v in errors.items() if k.endswith('error_rate')})
  if cfg.train.game == 'bigan' and cfg.eval.periodic_parzen != 'full':  # E's 1-NN scores: what the game is for
    scores = game_metrics.bigan_metrics(exp, g_params, cache, 'valid', full=False)
    out.update({f'valid/{k}': v for k, v in scores.items()})
  return {**out, **_sample_metrics(exp, g_params, cache)}


def _sample_metrics(exp, g_params, cache: dict) -> dict:
  cfg = exp.config
  if cfg.eval.periodic_parzen == 'full' and cfg.data.name != 'ring2d':
    samples = generate(exp, g_params, cfg.eval.num_samples, cfg.seed + 1)
    labels = players.sample_labels(exp.spec, len(samples))
    out = evaluate_samples(exp, samples, cache, 'valid', labels)
    if cfg.train.game in ('inpainting', 'bigan'):  # D's numbers need D: --mode=eval has them
      out.update(game_metrics.for_game(exp, g_params, None, cache, 'valid'))
    return {f'valid/{k}': v for k, v in out.items()}
  samples = generate(exp, g_params, cfg.eval.periodic_num_samples, cfg.seed + 3)
  if cfg.data.name == 'ring2d':
    return metrics.ring_modes(samples, data.synthetic.ring2d_modes(), RING_STD,
                              labels=players.sample_labels(exp.spec, len(samples)))
  if 'valid_cheap' not in cache:
    cache['valid_cheap'] = _held_out_split(exp, cache, 'valid')[0][:cfg.eval.periodic_valid_examples]
  ll = parzen.log_likelihoods(cache['valid_cheap'], _unit(exp, samples), parzen.SIGMAS).mean(axis=1)
  return {'parzen_valid_ll_cheap': float(ll.max())}


def evaluate(exp, workdir: str, step=None) -> dict:
  """--mode=eval: every metric against eval.split ('test', the reported number, by default)."""
  state, step, clock = load_state(exp, workdir, step, with_clock=True)
  cfg = exp.config
  splits = {}
  if cfg.eval.inception_weights:  # read before sampling: a wrong file fails in seconds
    from gan_jax.eval import fid  # pylint: disable=g-import-not-at-top
    splits['inception'] = fid.load_network(cfg.eval.inception_weights)
  g_params = step_lib.sampling_params(state)
  samples = generate(exp, g_params, cfg.eval.num_samples, cfg.seed + 1)
  labels = players.sample_labels(exp.spec, len(samples))
  result = {'step': step, 'train_minutes': clock.get('train_seconds', float('nan')) / 60,
            'split': cfg.eval.split, 'num_samples': len(samples),
            **evaluate_samples(exp, samples, splits, cfg.eval.split, labels),
            **inception_metrics(exp, g_params, samples, splits, cfg.eval.split),
            **folder_scores(exp, samples, splits)}
  figures_at = files.join(workdir, 'samples') if jax.process_index() == 0 else None
  result.update(game_metrics.for_game(exp, g_params, state, splits, cfg.eval.split, figures_at, step))
  if state.g_ema is not None:  # the raw G beside its moving average: what the average adds
    raw_samples = generate(exp, state.g_params, cfg.eval.num_samples, cfg.seed + 1)
    raw = {**evaluate_samples(exp, raw_samples, splits, cfg.eval.split, labels),
           **inception_metrics(exp, state.g_params, raw_samples, splits, cfg.eval.split),
           **folder_scores(exp, raw_samples, splits)}
    result.update({f'raw_g/{k}': v for k, v in raw.items() if k != 'classifier_accuracy'})
  if jax.process_index() == 0:
    files.write_text(files.join(workdir, 'eval.json'), json.dumps(result, indent=2))
    writer = progress.Writer(workdir)
    writer.scalars(step, {k: v for k, v in result.items() if k not in ('step', 'split')}, prefix='eval')
    writer.close()
    print(format_table(result))
  return result


def evaluated(workdir: str, step: int) -> bool:
  """Whether workdir's eval.json already holds the numbers of the checkpoint at `step`."""
  try:
    return json.loads(files.read_text(files.join(workdir, 'eval.json'))).get('step') == step
  except (OSError, ValueError):
    return False


def table1_row(result: dict, dataset: str) -> str:
  """The paper's Table 1 row (Parzen log-likelihood) beside this run's, with the numbers that
  do not rest on Parzen alone."""
  if 'parzen_ll' not in result:
    return f'No Table 1 row for {dataset}: Table 1 scores images; its numbers are in eval.json.'
  extra = ', '.join(f'{name} {result[k]:.3f}' if k != 'frechet_distance' else f'{name} {result[k]:.1f}'
                    for k, name in (('frechet_distance', 'classifier FD'), ('precision', 'precision'),
                                    ('recall', 'recall')) if k in result)
  paper = 'Adversarial nets (paper)  225 ± 2' if dataset == 'mnist' else 'Adversarial nets (paper): MNIST only'
  return (f'Table 1, {dataset}, Parzen window log-likelihood on the {result["split"]} split:\n'
          f'  {paper}\n'
          f'  this run, step {result["step"]}, {result["train_minutes"]:.1f} training minutes  '
          f'{result["parzen_ll"]:.1f} ± {result["parzen_se"]:.1f}' + (f'  ({extra})' if extra else ''))


def format_table(result: dict) -> str:
  w = max([34] + [len(k) + 2 for k in result])  # the longest name still leaves a gap
  lines = [f'{"metric":<{w}}value', '-' * (w + 6)]
  for k, v in result.items():
    lines.append(f'{k:<{w}}{v:.4f}' if isinstance(v, float) else f'{k:<{w}}{v}')
  if 'parzen_ll' in result:
    lines.append(f'{"Parzen (paper: GAN 225±2)":<{w}}{result["parzen_ll"]:.1f} ± {result["parzen_se"]:.1f}')
  if 'fd_pixels16' in result:
    lines.append('fd_pixels16, kid_pixels16: samples against the folder\'s own images, pixels at 16x16: not '
                 'comparable with published FID (set eval.inception_weights for fid and kid in Inception space)')
  elif 'kid' in result:
    lines.append('fid, kid: samples against the folder\'s own images in Inception space ("FID against the training set")')
  if 'frechet_distance' in result:
    lines.append('frechet_distance is in the eval classifier\'s features: not comparable with published FID'
                 + (' (fid is)' if 'fid' in result else ' (set eval.inception_weights for that)'))
  return '\n'.join(lines)


def sample(exp, workdir: str, step=None) -> list:
  """Writes pictures from a checkpoint without training: a sample grid, and for images the
  paper's Figure 2 (nearest training example) and Figure 3 (z interpolations)."""
  state, step = load_state(exp, workdir, step)
  g_params = step_lib.sampling_params(state)
  cfg, out_dir = exp.config, files.join(workdir, 'samples')
  samples = generate(exp, g_params, cfg.num_samples, cfg.seed + 2)
  paths = [files.join(out_dir, f'sample_step_{step:07d}.png')]
  if jax.process_index() != 0:
    return paths
  train_source = data.open_split(cfg.data, cfg.data.train_split, cfg.seed)
  reference = train_source.read(np.arange(min(2000, len(train_source)))) if samples.ndim == 2 else None
  figures.save_samples(samples, paths[0], cfg.data.scale, reference)
  if samples.ndim == 4:  # the nearest training images, searched chunk by chunk
    chunks = (data.scale(c, cfg.data.scale) for c in train_source.chunks())
    nearest = lambda idx: data.scale(train_source.read(idx), cfg.data.scale)
    paths.append(figures.figure2(samples[:30], chunks, nearest, cfg.data.scale,
                                 files.join(out_dir, f'figure2_step_{step:07d}.png')))
    z = sample_noise(jax.random.PRNGKey(cfg.seed + 4), (2, 8, cfg.model.noise_dim), cfg.model.noise)
    t = jnp.linspace(0.0, 1.0, 10)[None, :, None]
    zs = (1 - t) * z[0][:, None] + t * z[1][:, None]           # [8 rows, 10 steps, noise_dim]
    rows = players.sample_labels(exp.spec, 8)                  # a conditional G: one class a row
    images = np.asarray(exp.sample(g_params, zs.reshape(-1, cfg.model.noise_dim),
                                   None if rows is None else np.repeat(rows, 10)))
    paths.append(figures.figure3(images.reshape((8, 10) + images.shape[1:]), cfg.data.scale,
                                 files.join(out_dir, f'figure3_step_{step:07d}.png')))
  paths.append(write_npz(exp, state, files.join(out_dir, f'samples_step_{step:07d}.npz')))
  for p in paths:
    logging.info('Wrote %s', p)
  return paths


def write_npz(exp, state, path: str) -> str:
  """`sample.num_samples` samples for external scorers (torch-fidelity, clean-fid): images as
  uint8 NHWC in `images`, other data as float32 in `samples`; from the G evaluation uses
  (`sample.generator='eval'`: the moving average when there is one) or the raw G ('raw')."""
  cfg = exp.config
  g_params = state.g_params if cfg.sample.generator == 'raw' else step_lib.sampling_params(state)
  samples = generate(exp, g_params, cfg.sample.num_samples, cfg.seed + 5)
  labels = players.sample_labels(exp.spec, len(samples))
  if labels is not None:  # the class each sample was asked for
    arrays = {'labels': labels}
  else:
    arrays = {}
  if samples.ndim == 4:
    unit = np.clip(data.to_unit(samples, cfg.data.scale), 0.0, 1.0)
    arrays['images'] = np.round(unit * 255.0).astype(np.uint8)
  else:
    arrays['samples'] = samples.astype(np.float32)
  with files.open_file(path, 'wb') as f:
    np.savez(f, **arrays, generator=np.array(cfg.sample.generator), seed=np.array(cfg.seed + 5))
  return path
