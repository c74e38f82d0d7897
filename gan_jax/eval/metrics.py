"""Sample-quality numbers beyond the Parzen window: classifier-based (Fréchet distance, KID, score,
class coverage, precision/recall/coverage in its feature space) for MNIST-like data, memorisation
(nearest training image) for any images, mode coverage for the ring of Gaussians."""
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.errors import UserError


def gaussian(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Mean and covariance (float64) of feature rows: what a Fréchet distance compares."""
  a = np.asarray(features, np.float64)
  return a.mean(0), np.cov(a, rowvar=False)


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
  """‖μa - μb‖² + Tr(Σa + Σb - 2(ΣaΣb)^½) between Gaussians fitted to two feature sets, computed
  as pytorch-fid's calculate_frechet_distance (equal to it on the same features,
  benchmarks/inception_equivalence.py)."""
  return frechet_distance_of_gaussians(*gaussian(features_a), *gaussian(features_b))


def frechet_distance_of_gaussians(mu_a, cov_a, mu_b, cov_b) -> float:
  """The same from fitted Gaussians (e.g. cached statistics of a reference set)."""
  import warnings  # pylint: disable=g-import-not-at-top
  import scipy.linalg  # pylint: disable=g-import-not-at-top  (~0.1 s at every start, for this alone)
  with warnings.catch_warnings():  # singular products (fewer sets than features) are handled below
    warnings.simplefilter('ignore', scipy.linalg.LinAlgWarning)
    covmean = scipy.linalg.sqrtm(cov_a @ cov_b)
  if not np.isfinite(covmean).all():
    # as pytorch-fid: a ridge only when the product's square root is not finite (features that
    # never activate make the covariances singular)
    ridge = 1e-6 * np.eye(len(mu_a))
    covmean = scipy.linalg.sqrtm((cov_a + ridge) @ (cov_b + ridge))
  if np.iscomplexobj(covmean):
    covmean = covmean.real  # imaginary parts are numerical noise for PSD products
  return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(covmean))


def kernel_inception_distance(features_a, features_b, num_subsets: int = 100, subset_size: int = 1000,
                              seed: int = 0) -> tuple[float, float]:
  """KID (Bińkowski et al. 2018): the unbiased MMD² between two feature sets under the kernel
  k(x, y) = (x·y / d + 1)³, averaged over `num_subsets` random subsets of `subset_size` rows of
  each (drawn without replacement); (mean, std over subsets). Unbiased, so it can dip below 0
  when the sets come from one distribution. Subsets as torch-fidelity's defaults (100 of 1,000)."""
  a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
  if subset_size < 2:
    raise UserError(f'KID needs subsets of at least 2 features, not {subset_size}.')
  if min(len(a), len(b)) < subset_size:
    raise UserError(f'KID compares subsets of {subset_size} features, but one set has only '
                    f'{min(len(a), len(b))}: lower the subset size or give more samples.')
  rng, m, d = np.random.default_rng(seed), subset_size, a.shape[1]
  estimates = []
  for _ in range(num_subsets):
    x = a[rng.choice(len(a), m, replace=False)]
    y = b[rng.choice(len(b), m, replace=False)]
    k_xx, k_yy, k_xy = ((x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3)
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    estimates.append(within - 2 * k_xy.mean())
  return float(np.mean(estimates)), float(np.std(estimates))


def classifier_score(probs: np.ndarray) -> float:
  """The "inception score" with the MNIST classifier: exp E_x KL(p(y|x) ‖ p(y)), from 1 to 10."""
  probs = np.clip(np.asarray(probs, np.float64), 1e-12, 1.0)
  marginal = probs.mean(axis=0, keepdims=True)
  return float(np.exp(np.mean(np.sum(probs * (np.log(probs) - np.log(marginal)), axis=1))))


def classes_covered(probs: np.ndarray, threshold: float = 0.01) -> int:
  """Classes predicted for at least `threshold` of the samples."""
  counts = np.bincount(np.asarray(probs).argmax(axis=1), minlength=probs.shape[1])
  return int(np.sum(counts >= threshold * len(probs)))


def conditional_metrics(gen_probs, gen_feats, gen_labels, real_feats, real_labels) -> dict:
  """A conditional G's samples against the classes they were asked for: the classifier's
  accuracy on them (overall, and per class as conditional_accuracy/<c>), and the class-conditional
  Fréchet distance, the mean over classes of the distance between the samples of class c and the
  held-out images of class c (a G that draws good digits of the wrong class scores badly)."""
  gen_labels, real_labels = np.asarray(gen_labels), np.asarray(real_labels)
  hits = np.asarray(gen_probs).argmax(axis=1) == gen_labels
  classes = np.unique(gen_labels)
  out = {'conditional_accuracy': float(hits.mean())}
  out.update({f'conditional_accuracy/{c}': float(hits[gen_labels == c].mean()) for c in classes})
  out['class_conditional_fd'] = float(np.mean([
      frechet_distance(gen_feats[gen_labels == c], real_feats[real_labels == c]) for c in classes]))
  return out


def ring_modes(samples: np.ndarray, modes: np.ndarray, std: float, threshold: float = 0.01,
               labels=None) -> dict:
  """High quality: within 3σ of its nearest mode. Covered: a mode holding ≥ `threshold` of all
  samples as high-quality ones. With `labels` (the mode a conditional G was asked for), also the
  fraction of samples that are high quality at that mode."""
  d = np.linalg.norm(samples[:, None, :] - modes[None, :, :], axis=-1)
  nearest, good = d.argmin(axis=1), d.min(axis=1) <= 3 * std
  counts = np.bincount(nearest[good], minlength=len(modes))
  out = {'modes_covered': int(np.sum(counts >= threshold * len(samples))), 'num_modes': len(modes),
         'high_quality_fraction': float(good.mean())}
  if labels is not None:
    out['conditional_accuracy'] = float(np.mean(good & (nearest == np.asarray(labels))))
  return out


# --- nearest neighbours: improved precision/recall, coverage, memorisation ---------------------

@jax.jit
def _squared_distances(a, b):
  cross = jnp.matmul(a, b.T, precision=jax.lax.Precision.HIGHEST)
  return jnp.maximum(jnp.sum(a * a, 1)[:, None] + jnp.sum(b * b, 1)[None, :] - 2.0 * cross, 0.0)


def _rows(x, chunk):
  x = np.asarray(x, np.float32).reshape(len(x), -1)
  for start in range(0, len(x), chunk):
    yield start, jnp.asarray(x[start:start + chunk])


def kth_neighbour_radii(x, k: int, chunk: int = 1000) -> np.ndarray:
  """Squared distance from each row of x to its k-th nearest other row."""
  xs = jnp.asarray(np.asarray(x, np.float32).reshape(len(x), -1))
  out = np.empty(len(x), np.float32)
  for start, part in _rows(x, chunk):
    nearest = -jax.lax.top_k(-_squared_distances(part, xs), k + 1)[0]  # the row itself is first
    out[start:start + len(part)] = np.asarray(nearest[:, k])
  return out


def _any_within(queries, points, radii, chunk: int = 1000) -> np.ndarray:
  """For each query: is some point p within p's own radius of it?"""
  ps, r = jnp.asarray(np.asarray(points, np.float32).reshape(len(points), -1)), jnp.asarray(radii)
  return np.concatenate([np.asarray(jnp.any(_squared_distances(q, ps) <= r[None, :], axis=1))
                         for _, q in _rows(queries, chunk)])


def precision_recall_coverage(real, fake, k: int = 3) -> dict:
  """Improved precision and recall (Kynkäänniemi et al. 2019) and coverage (Naeem et al. 2020)
  with k-nearest-neighbour balls: precision, the fraction of fakes inside some real ball; recall,
  of reals inside some fake ball; coverage, of real balls holding at least one fake."""
  real_radii, fake_radii = kth_neighbour_radii(real, k), kth_neighbour_radii(fake, k)
  fs = jnp.asarray(np.asarray(fake, np.float32).reshape(len(fake), -1))
  nearest_fake = np.concatenate([np.asarray(jnp.min(_squared_distances(q, fs), axis=1)) for _, q in _rows(real, 1000)])
  return {'precision': float(_any_within(fake, real, real_radii).mean()),
          'recall': float(_any_within(real, fake, fake_radii).mean()),
          'coverage': float(np.mean(nearest_fake <= real_radii))}


def nearest_distances(queries, chunks) -> np.ndarray:
  """Euclidean distance from each query to its nearest row over all `chunks` (an iterable of
  arrays, e.g. a training split read piece by piece)."""
  q = jnp.asarray(np.asarray(queries, np.float32).reshape(len(queries), -1))
  best = jnp.full(len(q), jnp.inf)
  for c in chunks:
    c = jnp.asarray(np.asarray(c, np.float32).reshape(len(c), -1))
    best = jnp.minimum(best, jnp.min(_squared_distances(q, c), axis=1))
  return np.sqrt(np.asarray(best))


def nearest_other_distances(images, indices=None, rows: int = 1000) -> np.ndarray:
  """Euclidean distance from each image (or each of images[indices]) to its nearest *other*
  image of the same set (a set with nothing held out: the distance of a genuinely new image,
  left out in turn)."""
  x = jnp.asarray(np.asarray(images, np.float32).reshape(len(images), -1))
  indices = np.arange(len(x)) if indices is None else np.asarray(indices)
  out = []
  for start in range(0, len(indices), rows):
    own = indices[start:start + rows]
    d = _squared_distances(x[own], x).at[jnp.arange(len(own)), own].set(jnp.inf)
    out.append(np.asarray(jnp.min(d, axis=1)))
  return np.sqrt(np.maximum(np.concatenate(out), 0.0))


def memorisation(sample_to_train, test_to_train) -> dict:
  """Samples against genuinely new images: a sample is a near-copy when its nearest training
  image is closer than 99% of test images' nearest training images are."""
  s, t = np.asarray(sample_to_train), np.asarray(test_to_train)
  with np.errstate(divide='ignore', invalid='ignore'):  # a set of duplicates: median 0, ratio inf (nan: 0/0)
    ratio = float(np.median(s) / np.median(t))
  return {'nn_train_distance_ratio': ratio, 'near_copy_fraction': float(np.mean(s < np.percentile(t, 1)))}


def nearest_neighbour_accuracy(train_features, train_labels, test_features, test_labels, chunk: int = 1000) -> float:
  """1-NN classification accuracy (Euclidean) of test rows by the labels of their nearest training
  rows: how well a representation keeps the classes apart (BiGAN's table 1 protocol)."""
  ts = jnp.asarray(np.asarray(train_features, np.float32).reshape(len(train_features), -1))
  nearest = np.concatenate([np.asarray(jnp.argmin(_squared_distances(q, ts), axis=1))
                            for _, q in _rows(test_features, chunk)])
  return float(np.mean(np.asarray(train_labels)[nearest] == np.asarray(test_labels)))


def linear_probe_accuracy(train_features, train_labels, test_features, test_labels, steps: int = 500,
                          seed: int = 0) -> float:
  """A softmax regression on standardised features (full-batch Adam, weight decay 1e-4), trained on
  the training rows, scored on the test rows."""
  import optax
  a, b = (np.asarray(f, np.float32).reshape(len(f), -1) for f in (train_features, test_features))
  mu, sd = a.mean(0), a.std(0) + 1e-6
  a, b = jnp.asarray((a - mu) / sd), jnp.asarray((b - mu) / sd)
  y = jnp.asarray(train_labels)
  n_classes = int(max(np.max(train_labels), np.max(test_labels))) + 1
  params = {'w': jnp.zeros((a.shape[1], n_classes)), 'b': jnp.zeros((n_classes,))}
  tx = optax.adamw(1e-2, weight_decay=1e-4)

  @jax.jit
  def update(params, opt_state):
    loss = lambda p: optax.softmax_cross_entropy_with_integer_labels(a @ p['w'] + p['b'], y).mean()
    grads = jax.grad(loss)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state
  opt_state = tx.init(params)
  for _ in range(steps):
    params, opt_state = update(params, opt_state)
  return float(np.mean(np.asarray(jnp.argmax(b @ params['w'] + params['b'], axis=1)) == np.asarray(test_labels)))
