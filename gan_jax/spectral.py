"""Spectral normalisation of D's weights (Miyato et al. 2018): each weight matrix divided by an
estimate of its largest singular value, kept by one power iteration per D-update.

A kernel of any rank is read as the matrix W = kernel.reshape(-1, out).T, [out, in] (a
convolution's (h, w, in, out) kernel as PyTorch's [out, in·h·w], up to the order of the inputs,
which does not change singular values). Its vectors u [out] and v [in] live in the training state,
not in the parameters (the optimiser never sees them), and in the checkpoint. As
torch.nn.utils.spectral_norm: one iteration v ← W^T u / ‖W^T u‖, u ← W v / ‖W v‖, then
σ = u^T W v with u and v held constant under differentiation; D uses kernel / σ.
"""
import jax
import jax.numpy as jnp
from flax import traverse_util

from gan_jax.errors import UserError

EPS = 1e-12  # PyTorch's default: a zero vector stays finite


def _kernels(d_params) -> dict:
  """{path: kernel} of every weight matrix of D (leaves named 'kernel' of rank >= 2)."""
  flat = traverse_util.flatten_dict(d_params, sep='/')
  return {path: w for path, w in flat.items() if path.split('/')[-1] == 'kernel' and w.ndim >= 2}


def _matrix(kernel):
  return kernel.reshape(-1, kernel.shape[-1]).T  # [out, in]


def _unit(x):
  return x / (jnp.linalg.norm(x) + EPS)


def init(d_params, key) -> dict:
  """{path: {'u': [out], 'v': [in]}}: u drawn from N(0, I) and normalised, as PyTorch starts, and
  v the first iteration's; raises UserError when D has no weight matrix to normalise."""
  kernels = _kernels(d_params)
  if not kernels:
    raise UserError('train.spectral_norm=True normalises the weight matrices of D, and this D has none '
                    '(no parameter named kernel of rank 2 or more).')
  vectors = {}
  for i, (path, w) in enumerate(sorted(kernels.items())):
    u = _unit(jax.random.normal(jax.random.fold_in(key, i), (w.shape[-1],), w.dtype))
    vectors[path] = {'u': u, 'v': _unit(_matrix(w).T @ u)}
  return vectors


def iterate(d_params, vectors) -> dict:
  """One power iteration per weight matrix, from the stored u."""
  kernels, out = _kernels(d_params), {}
  for path, uv in vectors.items():
    w = jax.lax.stop_gradient(_matrix(kernels[path]))
    v = _unit(w.T @ uv['u'])
    out[path] = {'u': _unit(w @ v), 'v': v}
  return out


def sigmas(d_params, vectors) -> dict:
  """{path: σ = u^T W v}, differentiable in W only."""
  kernels = _kernels(d_params)
  return {path: jax.lax.stop_gradient(uv['u']) @ _matrix(kernels[path]) @ jax.lax.stop_gradient(uv['v'])
          for path, uv in vectors.items()}


def normalise(d_params, vectors):
  """D's parameters with each weight matrix divided by its σ (biases and the rest unchanged)."""
  if vectors is None:
    return d_params
  flat = traverse_util.flatten_dict(d_params, sep='/')
  for path, sigma in sigmas(d_params, vectors).items():
    flat[path] = flat[path] / sigma
  return traverse_util.unflatten_dict(flat, sep='/')
