"""Figure 1 of the paper, drawn from a real 1-D training run.

Panels: (a) the adversarial pair part-way through training (a kept checkpoint); (b) the same pair
after D is trained to convergence with G fixed, so D ≈ D*; (c) after G then takes updates against
that D; (d) the end of the run, where p_g ≈ p_data and D ≈ 1/2. Each panel shows p_data (dotted),
p_g (solid: a Gaussian KDE of 20,000 samples of G), D (dashed) and the mapping x = G(z) as arrows
from the z line (below) to the x line.
"""
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import data, files, objective, step
from gan_jax.eval import figures
from gan_jax.models import sample_noise



def kde(samples: np.ndarray, grid: np.ndarray) -> np.ndarray:
  """Gaussian kernel density estimate with Scott's bandwidth."""
  samples = np.asarray(samples, np.float64).reshape(-1)
  bw = 1.06 * samples.std() * len(samples) ** (-1 / 5) + 1e-6
  out = np.zeros_like(grid, dtype=np.float64)
  for chunk in np.array_split(samples, max(1, len(samples) // 2000)):
    out += np.exp(-0.5 * ((grid[:, None] - chunk[None, :]) / bw) ** 2).sum(1)
  return out / (len(samples) * bw * math.sqrt(2 * math.pi))


def data_density(grid):
  mean, std = data.synthetic.gaussian1d_params()
  return np.exp(-0.5 * ((grid - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))


def panel_curves(spec, state, grid, key, num_samples=20000):
  """(p_g on the grid, D on the grid) for one state."""
  z = sample_noise(key, (num_samples, spec.noise_dim), spec.noise)
  samples = np.asarray(spec.g.apply(state.g_params, z))
  d = jax.nn.sigmoid(spec.d.apply(step.discriminator_params(state), jnp.asarray(grid, jnp.float32)[:, None]))
  return kde(samples, grid), np.asarray(d)


def figure_stages(exp, early_state, final_state, d_steps: int, g_steps: int):
  """The four states of Figure 1, the middle two made by the project's own D and G updates."""
  spec, cfg = exp.spec, exp.config
  key = jax.random.PRNGKey(cfg.seed + 11)
  rng = np.random.default_rng(cfg.seed + 11)
  idx = rng.integers(0, len(exp.train_source), (d_steps, cfg.train.batch_size))
  converged, _ = jax.jit(functools.partial(step.train_discriminator, spec))(
      early_state, exp.train_source.read(idx.reshape(-1)).reshape(idx.shape + exp.train_source.shape), key)
  g_update = jax.jit(functools.partial(step.g_update, spec), static_argnums=2)
  moved = converged
  for i in range(g_steps):
    moved, _ = g_update(moved, jax.random.fold_in(key, i), cfg.train.batch_size)
  return [early_state, converged, moved, final_state]


def write(exp, stages, path: str, grid_range=(-1.5, 3.5)):
  spec = exp.spec
  grid = np.linspace(*grid_range, 400)
  p_data = data_density(grid)
  titles = ['(a) part-way', '(b) D trained to D*', '(c) after G updates', '(d) end: p_g ≈ p_data']
  plt = figures.pyplot()
  fig, axes = plt.subplots(1, 4, figsize=(18, 4.2), sharey=True)
  z_arrows = np.linspace(-math.sqrt(3) * 0.98, math.sqrt(3) * 0.98, 15)[:, None] \
      if spec.noise == 'uniform' else np.linspace(-2, 2, 15)[:, None]
  z_span = np.abs(z_arrows).max()
  z_to_plot = lambda z: grid_range[0] + (z / z_span + 1) / 2 * (grid_range[1] - grid_range[0])
  top = 1.05 * max(p_data.max(), 1.0)
  for i, (ax, state) in enumerate(zip(axes, stages)):
    p_g, d = panel_curves(spec, state, grid, jax.random.PRNGKey(100 + i))
    ax.plot(grid, p_data, 'k:', lw=2, label='p_data')
    ax.plot(grid, np.minimum(p_g, 3 * top), 'g-', lw=2, label='p_g')
    ax.plot(grid, d, 'b--', lw=2, label='D(x)')
    if i == 1:  # the analytic optimum the trained D should match where either density has mass
      mass = (p_data + p_g) > 0.05
      d_star = np.where(mass, np.asarray(objective.optimal_discriminator(p_data, p_g)), np.nan)
      ax.plot(grid, d_star, color='tab:red', lw=1, alpha=0.8, label='D* = p_data/(p_data+p_g)')
      ax.legend(loc='upper right', fontsize=8)
    x_of_z = np.asarray(spec.g.apply(state.g_params, jnp.asarray(z_arrows, jnp.float32)))[:, 0]
    ax.axhline(-0.12, color='k', lw=1)
    ax.axhline(-0.55, color='k', lw=1)
    for z, x in zip(z_arrows[:, 0], x_of_z):
      ax.annotate('', xy=(np.clip(x, *grid_range), -0.12), xytext=(z_to_plot(z), -0.55),
                  arrowprops=dict(arrowstyle='->', color='0.35', lw=0.8))
    ax.text(grid_range[0], -0.1, 'x', fontsize=10)
    ax.text(grid_range[0], -0.53, 'z', fontsize=10)
    ax.set_title(titles[i])
    ax.set_xlim(*grid_range)
    ax.set_ylim(-0.65, top)
    ax.set_yticks([0, 0.5, 1.0])
  axes[0].legend(loc='upper left', fontsize=9)
  fig.tight_layout()
  with files.open_file(path, 'wb') as f:
    fig.savefig(f, dpi=110, format='png')
  plt.close(fig)
  return path
