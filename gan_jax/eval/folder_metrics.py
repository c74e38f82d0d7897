"""Quality numbers for a folder of the user's own images, which holds nothing out: G's samples
against the folder's images themselves (the protocol of "FID against the training set").

- Fréchet distance and KID (Bińkowski et al. 2018: unbiased, its std over subsets; the one to read
  on small folders, where a Fréchet distance is biased by the few images) in Inception's pool3
  space (pytorch-fid's network) when eval.inception_weights is given: `fid`, `kid`, `kid_std`.
  Without it, in a space that needs no download: the pixels, each image resized to 16×16
  (linear, antialiased) per channel: `fd_pixels16`, `kid_pixels16`, `kid_pixels16_std`. Those
  rank runs on one folder; they are not comparable with any published FID.
- Memorisation: a sample is a near copy when its nearest folder image is closer than 99% of the
  folder's images are to their nearest *other* image (`near_copy_fraction`; up to 2,000 of them,
  drawn once, left out in turn); and the median of the first over the median of the second
  (`nn_train_distance_ratio`; well below 1: copies).
"""
import jax
import numpy as np

from gan_jax import data
from gan_jax.errors import UserError
from gan_jax.eval import metrics

PIXELS = 16
KID_SUBSET = 1000  # torch-fidelity's default subset size, when the folder and samples allow it
NEW_IMAGES = 2000  # folder images left out in turn for the near-copy threshold (its 1st percentile)


@jax.jit
def _resized(x):
  return jax.image.resize(x, (len(x), PIXELS, PIXELS, x.shape[-1]), 'linear', antialias=True)


def pixel_features(images, batch: int = 500) -> np.ndarray:
  """[n, 16·16·channels]: images in [0, 1], resized to 16×16."""
  images = np.asarray(images, np.float32)
  return np.concatenate([np.asarray(_resized(images[i:i + batch])).reshape(len(images[i:i + batch]), -1)
                         for i in range(0, len(images), batch)])


def subset_size(config, num_images: int, num_samples: int) -> int:
  """eval.kid_subset_size, or (None) the largest of at most KID_SUBSET both sets allow."""
  chosen = config.eval.get('kid_subset_size')
  if chosen is None:
    return min(KID_SUBSET, num_images, num_samples)
  if chosen > num_images:
    raise UserError(f'eval.kid_subset_size={chosen}, but the folder holds {num_images} images; '
                    f'set it to at most {num_images} (or None: chosen from the folder and eval.num_samples).')
  return chosen


def folder_images(exp, cache: dict) -> np.ndarray:
  """The folder's images (the training split) as [0, 1] pixels, read once per `cache`."""
  if 'folder_images' not in cache:
    source = data.open_split(exp.config.data, exp.config.data.train_split, exp.config.seed)
    cache['folder_images'] = data.scale(source.read_all(), 'unit')
  return cache['folder_images']


def scores(exp, samples, cache: dict) -> dict:
  """Every folder number for `samples` ([0, 1] pixels); `cache` keeps the folder's features
  and distances, and holds 'inception' (fid.Network) when eval.inception_weights is given."""
  images = folder_images(exp, cache)
  if 'inception' in cache:
    from gan_jax.eval import fid  # pylint: disable=g-import-not-at-top  (only with Inception weights)
    features, names = lambda x, what: fid.features(cache['inception'], x, what)[0], ('fid', 'kid')
  else:
    features, names = lambda x, what: pixel_features(x), ('fd_pixels16', 'kid_pixels16')
  if 'folder_features' not in cache:
    cache['folder_features'] = features(images, 'folder images')
    left_out = np.sort(np.random.default_rng(0).permutation(len(images))[:NEW_IMAGES])  # all of a small folder
    cache['folder_nearest_other'] = metrics.nearest_other_distances(images, left_out)
  real, fake = cache['folder_features'], features(samples, 'generator samples')
  kid, kid_std = metrics.kernel_inception_distance(fake, real, subset_size=subset_size(exp.config, len(real), len(fake)))
  nearest = metrics.nearest_distances(samples, [images])
  return {names[0]: metrics.frechet_distance(fake, real), names[1]: kid, f'{names[1]}_std': kid_std,
          **metrics.memorisation(nearest, cache['folder_nearest_other'])}
