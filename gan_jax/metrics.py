"""Sample-quality numbers beyond the Parzen window: classifier-based (Fréchet distance, score,
class coverage) for MNIST-like data, mode coverage for the ring of Gaussians."""
import numpy as np
import scipy.linalg


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
  """‖μa - μb‖² + Tr(Σa + Σb - 2(ΣaΣb)^½) between Gaussians fitted to two feature sets."""
  a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
  mu_a, mu_b = a.mean(0), b.mean(0)
  # a small ridge keeps the product's square root defined when features are never active
  # (ReLU units that stay at 0 make the covariances singular)
  ridge = 1e-6 * np.eye(a.shape[1])
  cov_a, cov_b = np.cov(a, rowvar=False) + ridge, np.cov(b, rowvar=False) + ridge
  covmean = scipy.linalg.sqrtm(cov_a @ cov_b)
  if np.iscomplexobj(covmean):
    covmean = covmean.real  # imaginary parts are numerical noise for PSD products
  return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b - 2.0 * covmean))


def classifier_score(probs: np.ndarray) -> float:
  """The "inception score" with the MNIST classifier: exp E_x KL(p(y|x) ‖ p(y)), from 1 to 10."""
  probs = np.clip(np.asarray(probs, np.float64), 1e-12, 1.0)
  marginal = probs.mean(axis=0, keepdims=True)
  return float(np.exp(np.mean(np.sum(probs * (np.log(probs) - np.log(marginal)), axis=1))))


def classes_covered(probs: np.ndarray, threshold: float = 0.01) -> int:
  """Classes predicted for at least `threshold` of the samples."""
  counts = np.bincount(np.asarray(probs).argmax(axis=1), minlength=probs.shape[1])
  return int(np.sum(counts >= threshold * len(probs)))


def ring_modes(samples: np.ndarray, modes: np.ndarray, std: float, threshold: float = 0.01) -> dict:
  """High quality: within 3σ of its nearest mode. Covered: a mode holding ≥ `threshold` of all
  samples as high-quality ones."""
  d = np.linalg.norm(samples[:, None, :] - modes[None, :, :], axis=-1)
  nearest, good = d.argmin(axis=1), d.min(axis=1) <= 3 * std
  counts = np.bincount(nearest[good], minlength=len(modes))
  return {'modes_covered': int(np.sum(counts >= threshold * len(samples))), 'num_modes': len(modes),
          'high_quality_fraction': float(good.mean())}
