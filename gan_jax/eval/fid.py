"""Standard FID and Inception Score in --mode=eval: pytorch-fid's network (inception.py) on
generator samples, against the evaluation split's pool3 mean and covariance. Those statistics are
computed once per dataset, split, image size and weights and cached under
~/.cache/gan_jax/fid_stats/, since on a CPU the network runs at ~3 images/s."""
import dataclasses
import hashlib
import os
import pickle
import re
import time
import zipfile

from flax import traverse_util
import numpy as np

from gan_jax import progress
from gan_jax.eval import inception, metrics
from gan_jax.errors import UserError

STATS_FORMAT = 1  # bump when what a statistics file holds changes: older files are then recomputed
POOL3 = 2048
LOG_EVERY_SECONDS = 30.0


@dataclasses.dataclass(frozen=True)
class Network:
  variables: dict  # what inception.load_params returns
  digest: str      # sha256 of the parameter values: cached statistics belong to these weights only


def check_weights_path(path: str) -> None:
  """Reads nothing, so validate_config can run it before anything starts."""
  if not os.path.isfile(path):
    raise UserError(f'eval.inception_weights={path}: no such file; give pytorch-fid\'s '
                    'pt_inception-2015-12-05-6726825d.pth, or the .npz that '
                    '`python -m gan_jax.eval.inception --convert` writes from it.')


# what a file that is not the weights makes np.load / torch.load / load_params raise
_UNREADABLE = (ValueError, KeyError, OSError, EOFError, RuntimeError, ImportError, zipfile.BadZipFile,
               pickle.UnpicklingError)


def load_network(path: str) -> Network:
  check_weights_path(path)
  try:
    variables = inception.load_params(path)
  except _UNREADABLE as e:
    # load_params' own messages name the fix; a reader's (numpy's suggests allow_pickle) would not
    ours = isinstance(e, ImportError) or 'FID InceptionV3' in str(e)
    reason = ' '.join(str(e).split()) if ours else f'not an .npz of arrays nor a torch file ({type(e).__name__})'
    raise UserError(f'eval.inception_weights={path} is not usable FID Inception weights: {reason}') from None
  return Network(variables, _digest(variables))


def _digest(variables) -> str:
  # of the values, not the file: the .pth and the .npz converted from it share statistics
  h = hashlib.sha256()
  for name, value in sorted(traverse_util.flatten_dict(variables, sep='/').items()):
    h.update(name.encode())
    h.update(np.asarray(value, np.float32).tobytes())
  return h.hexdigest()


def default_stats_path(data_config, split: str, image_shape, network: Network) -> str:
  """~/.cache/gan_jax/fid_stats/<dataset>_<split>_<H>x<W>x<C>_<weights>.npz"""
  name = data_config.name
  if data_config.path:  # a folder of images: which folder
    name += '-' + hashlib.sha256(os.path.abspath(data_config.path).encode()).hexdigest()[:8]
  split = re.sub(r'[^\w.-]+', '-', split).strip('-')  # 'test[:100]' is no file name
  size = 'x'.join(str(n) for n in image_shape)
  return os.path.join(os.path.expanduser('~'), '.cache', 'gan_jax', 'fid_stats',
                      f'{name}_{split}_{size}_{network.digest[:16]}.npz')


def _images_digest(images) -> str:
  return hashlib.sha256(np.ascontiguousarray(images, np.float32).tobytes()).hexdigest()


def features(network: Network, images, what: str, batch_size: int = 50):
  """inception.features of images in [0, 1], piece by piece, logging images/s and the time left."""
  # values outside [0, 1] are not pixels; samples_step_N.npz (uint8) clips them the same way
  images = np.clip(np.asarray(images, np.float32), 0.0, 1.0)
  n, parts = len(images), []
  progress.log('Inception features of %d %s.', n, what)
  start = last = time.monotonic()
  for i in range(0, n, batch_size):
    parts.append(inception.features(network.variables, images[i:i + batch_size], batch_size))
    done, now = min(i + batch_size, n), time.monotonic()
    if now - last > LOG_EVERY_SECONDS and done < n:
      last, rate = now, done / (now - start)
      progress.log('  %d/%d (%.1f images/s, %.0f s left)', done, n, rate, (n - done) / rate)
  progress.log('Inception features of %d %s in %.0f s.', n, what, time.monotonic() - start)
  return np.concatenate([p for p, _ in parts]), np.concatenate([l for _, l in parts])


def _read_stats(path: str, images: str, weights: str):
  """(mean, covariance) from a statistics file of these images and weights, else None."""
  if not os.path.exists(path):
    return None
  try:
    with np.load(path) as f:
      fits = int(f['format']) == STATS_FORMAT and str(f['images']) == images and str(f['weights']) == weights
      mu, cov = f['mu'], f['cov']
  except (ValueError, KeyError, OSError, EOFError, zipfile.BadZipFile) as e:
    progress.warn('FID statistics %s are unreadable (%s); computing them again.', path, e)
    return None
  if not fits or mu.shape != (POOL3,) or cov.shape != (POOL3, POOL3) or not np.all(np.isfinite(cov)):
    progress.warn('FID statistics %s are of other images, weights or format; computing them again.', path)
    return None
  return mu, cov


def _write_stats(path: str, mu, cov, images: str, weights: str) -> None:
  tmp = f'{path}.tmp-{os.getpid()}'
  try:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(tmp, 'wb') as f:
      np.savez(f, mu=mu, cov=cov, images=np.array(images), weights=np.array(weights),
               format=np.array(STATS_FORMAT))
    os.replace(tmp, path)  # whole or absent: a killed run leaves no half-written statistics
  except OSError as e:  # a read-only home costs time, not the evaluation
    progress.warn('Could not cache the FID statistics at %s (%s).', path, e)
    if os.path.exists(tmp):
      os.remove(tmp)
    return
  progress.log('Wrote the FID statistics %s.', path)


def reference_stats(network: Network, images, path: str, batch_size: int = 50):
  """Mean and covariance of the pool3 features of `images` (a split, [0, 1]): read from `path`
  when it holds those of these very images and weights, else computed and written there."""
  images_digest = _images_digest(images)
  cached = _read_stats(path, images_digest, network.digest)
  if cached is not None:
    progress.log('FID statistics of the %d reference images from %s.', len(images), path)
    return cached
  pool3, _ = features(network, images, 'reference images (once: then cached)', batch_size)
  mu, cov = metrics.gaussian(pool3)
  _write_stats(path, mu, cov, images_digest, network.digest)
  return mu, cov


def scores(network: Network, samples, reference, batch_size: int = 50) -> dict:
  """FID against `reference` (reference_stats) and Inception Score (torch-fidelity's: 10 splits)
  of samples in [0, 1]."""
  pool3, logits = features(network, samples, 'generator samples', batch_size)
  is_mean, is_std = inception.inception_score(logits)
  return {'fid': metrics.frechet_distance_of_gaussians(*metrics.gaussian(pool3), *reference),
          'inception_score': is_mean, 'inception_score_std': is_std, 'fid_num_samples': len(samples)}
