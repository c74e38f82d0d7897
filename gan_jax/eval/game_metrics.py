"""The §7 games' own numbers, beside evaluate.py's sample metrics: completions of held-out digits
(inpainting), E's representation and reconstructions (bigan), D as a classifier (semi_supervised).
`for_game` picks the right one for a run."""
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import data
from gan_jax import files
from gan_jax import step as step_lib
from gan_jax.eval import classifier, figures, held_out, metrics
from gan_jax.games import inpainting
from gan_jax.models import average_batch_stats, sample_noise


def for_game(exp, state_params, state, cache: dict, split: str, figure_dir=None, step: int = 0) -> dict:
  """The numbers of exp's game (train.game) for the generator player's `state_params` (the ones
  evaluation samples from) and the run's `state` (for D; None where the game's numbers need
  no D); `figure_dir`: where its picture goes, if any."""
  game = exp.config.train.game
  figure = lambda name: files.join(figure_dir, f'{name}_step_{step:07d}.png') if figure_dir else None
  if figure_dir:
    files.makedirs(figure_dir)
  if game == 'inpainting':  # rows: digits, as seen, three completions; per mask kind
    return inpainting_metrics(exp, state_params, cache, split, figure=figure('inpainting'))
  if game == 'bigan':  # rows: digits above their reconstructions G(E(x))
    return bigan_metrics(exp, state_params, cache, split, figure=figure('reconstructions'))
  if game == 'semi_supervised':
    return semi_supervised_metrics(exp, state, cache, split)
  return {}


def inpainting_metrics(exp, g_params, cache: dict, split: str, kinds=('bottom', 'random'), figure=None) -> dict:
  """§7 item 3: the held-out `split`'s digits seen through each mask kind and completed by G; the
  classifier's accuracy on the completions against the true labels, beside its accuracy on the
  masked digits as seen (hidden pixels 0: what completion has to improve on). `figure`: a path
  for a picture of the first 10 digits, masked, and completed three times."""
  cfg = exp.config
  images, labels = held_out.held_out_split(exp.config.data, exp.config.seed, cache, split)
  if labels is None or images.shape[1:] != (28, 28, 1):
    return {}
  n = min(cfg.eval.num_samples, len(images))
  x = jnp.asarray(data.from_unit(images[:n], cfg.data.scale))
  params = held_out.load_classifier(cfg, images, labels)
  complete = jax.jit(lambda p, x, m, z: inpainting.complete(exp.spec, p, x, m, z))
  key = jax.random.PRNGKey(cfg.seed + 6)
  out, rows = {}, []
  for kind in kinds:
    m = inpainting.masks_of(kind, jax.random.split(jax.random.fold_in(key, 1), n), x.shape[1:])
    z = sample_noise(jax.random.fold_in(key, 2), (n, exp.spec.noise_dim), exp.spec.noise)
    filled = np.concatenate([np.asarray(complete(g_params, x[i:i + 1000], m[i:i + 1000], z[i:i + 1000]))
                             for i in range(0, n, 1000)])
    out[f'inpainting_accuracy/{kind}'] = classifier.accuracy(params, data.to_unit(filled, exp.config.data.scale), labels[:n])
    out[f'masked_accuracy/{kind}'] = classifier.accuracy(params, np.asarray(m) * images[:n], labels[:n])
    if figure:
      again = [complete(g_params, x[:10], m[:10], sample_noise(jax.random.fold_in(key, 10 + j), (10, exp.spec.noise_dim),
                                                             exp.spec.noise)) for j in range(3)]
      seen = np.asarray(m[:10]) * images[:10] + (1 - np.asarray(m[:10])) * 0.5  # hidden: grey
      rows += [images[:10], seen] + [data.to_unit(np.asarray(a), exp.config.data.scale) for a in again]
  if figure:
    grid = figures.image_grid(figures.to_uint8(np.concatenate(rows), 'unit'), ncols=10)
    figures.save_png(grid, figure)
  return out


def encoder_variables(exp, e_params, train_images, cache: dict, num_batches: int = 1000):
  """E's variables as evaluation runs it. With batch normalisation, BiGAN's test mode (its
  deploy(), train_gan.py:852-862; net.py:497-525): each layer normalised by the plain average of
  the means and unbiased variances of `num_batches` training batches (train.batch_size each,
  consecutive batches of seeded permutations), so a code does not depend on the batch it came in."""
  if not getattr(exp.spec.e, 'batch_norm', False):
    return e_params
  cfg = exp.config
  b, n = cfg.train.batch_size, len(train_images)
  rng = np.random.default_rng([cfg.seed, 0xB16])
  order = np.concatenate([rng.permutation(n) for _ in range(-(-num_batches * b // n))])
  apply = cache.setdefault('e_bn_stats', jax.jit(lambda p, x: exp.spec.e.apply(p, x, mutable=['bn_stats'])))
  batches = (data.from_unit(train_images[order[i * b:(i + 1) * b]], cfg.data.scale) for i in range(num_batches))
  return {**e_params, 'batch_stats': average_batch_stats(lambda x: apply(e_params, x), batches)}


def encoder_features(exp, e_variables, images, cache: dict) -> dict:
  """E on [0, 1] images, in chunks: 'code' (what D and G see), 'logits' (the code's
  pre-activation: BiGAN's NNC_e features) and 'hidden' (its last hidden layer: NNC_e-)."""
  fn = cache.setdefault('e_features', jax.jit(lambda p, x: exp.spec.e.apply(p, x, mutable=['intermediates'])))
  parts = []
  for i in range(0, len(images), 1000):
    code, inter = fn(e_variables, data.from_unit(images[i:i + 1000], exp.config.data.scale))
    parts.append({'code': code, 'logits': inter['intermediates']['logits'][0],
                  'hidden': inter['intermediates']['features'][0]})
  return {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}


def bigan_metrics(exp, players, cache: dict, split: str, figure=None, full: bool = True) -> dict:
  """§7 item 2: E's representation of the held-out `split` against the training split's, by 1-NN
  (Euclidean) on the code's pre-activation ('encoder_1nn_accuracy', BiGAN's NNC_e; the code itself
  for a linear one) and on E's last hidden layer ('encoder_hidden_1nn_accuracy', NNC_e-), beside
  raw pixels' 1-NN on the same split (the baseline a representation has to beat); with `full`, a
  linear probe on the codes and the classifier's accuracy on reconstructions G(E(x)). With split='test'
  the 1-NN numbers are also given on the validation split under 'anchor_split/' (BiGAN scores a
  held-out part of the training set: writers shared with the reference images, unlike the test
  split). `figure`: a path for the first 20 held-out digits above their reconstructions."""
  cfg = exp.config
  if cfg.data.name in data.SYNTHETIC:  # points, not images: the ring's test is its own (tests/test_bigan.py)
    return {}
  if 'train_images' not in cache:  # read once per run, not at every periodic evaluation
    source = data.open_split(cfg.data, cfg.data.train_split, cfg.seed)
    cache['train_labels'] = source.labels
    cache['train_images'] = None if source.labels is None else np.concatenate(
        [data.scale(c, 'unit') for c in source.chunks()])
  train_images, train_labels = cache['train_images'], cache['train_labels']
  if train_labels is None:
    return {}
  e_variables = encoder_variables(exp, players['e'], train_images, cache)
  reference = encoder_features(exp, e_variables, train_images, cache)
  out, held = {}, {}
  for prefix, where in (('', split), ('anchor_split/', 'valid')) if split == 'test' else (('', split),):
    images, labels = held_out.held_out_split(cfg.data, cfg.seed, cache, where)
    if labels is None:
      continue
    held[where] = (images, labels, encoder_features(exp, e_variables, images, cache))
    feats = held[where][2]
    out[prefix + 'encoder_1nn_accuracy'] = metrics.nearest_neighbour_accuracy(reference['logits'], train_labels,
                                                                              feats['logits'], labels)
    out[prefix + 'encoder_hidden_1nn_accuracy'] = metrics.nearest_neighbour_accuracy(reference['hidden'], train_labels,
                                                                                     feats['hidden'], labels)
    if f'pixels_1nn_accuracy/{where}' not in cache:
      cache[f'pixels_1nn_accuracy/{where}'] = metrics.nearest_neighbour_accuracy(train_images, train_labels, images, labels)
    out[prefix + 'pixels_1nn_accuracy'] = cache[f'pixels_1nn_accuracy/{where}']
  if split not in held or not full:
    return out
  images, labels, feats = held[split]
  out['encoder_linear_probe_accuracy'] = metrics.linear_probe_accuracy(reference['code'], train_labels,
                                                                         feats['code'], labels)
  recon = np.asarray(exp.sample(players, jnp.asarray(feats['code'])))
  if images.shape[1:] == (28, 28, 1):
    params = held_out.load_classifier(cfg, images, labels)
    out['reconstruction_accuracy'] = classifier.accuracy(params, data.to_unit(recon, exp.config.data.scale), labels)
  if figure:
    pairs = np.concatenate([images[:10], data.to_unit(recon[:10], exp.config.data.scale), images[10:20], data.to_unit(recon[10:20], exp.config.data.scale)])
    figures.save_png(figures.image_grid(figures.to_uint8(pairs, 'unit'), ncols=10), figure)
  return out


def semi_supervised_metrics(exp, state, cache: dict, split: str) -> dict:
  """§7 item 4: D as a classifier (argmax of its K logits, no dropout or noise) on the held-out
  `split`: the average of D's weights when the run keeps one (train.d_ema_decay), and the raw D
  beside it (raw_d/...)."""
  images, labels = held_out.held_out_split(exp.config.data, exp.config.seed, cache, split)
  x = data.from_unit(images, exp.config.data.scale)
  logits = cache.setdefault('d_logits', jax.jit(lambda p, x: exp.spec.d.apply(p, x)))  # one compile per run

  def errors(d_params):
    predicted = np.concatenate([np.asarray(jnp.argmax(logits(d_params, x[i:i + 1000]), -1)) for i in range(0, len(x), 1000)])
    n = int(np.sum(predicted != labels))
    return {'classification_errors': n, 'classification_error_rate': n / len(labels)}
  out = errors(step_lib.classifier_params(state))
  if state.d_ema is not None:
    out.update({f'raw_d/{k}': v for k, v in errors(state.d_params).items()})
  return out
