"""Steps/s of the dcgan training step with its 4×4 stride-2 convolutions written three ways, in one
process, as interleaved rounds:

  matmuls     models/dcgan.py as shipped: one matmul over 2×2 windows of 2×2 blocks, differentiated
              by JAX
  xla         lax.conv_general_dilated / lax.conv_transpose (nn.Conv's and nn.ConvTranspose's own
              convolutions), differentiated by JAX
  custom_vjp  the shipped matmuls, each with its own VJP whose kernel gradient multiplies the windows
              built tap-major ([16·in, rows] @ [rows, out]) instead of contracting [rows, 16·in]
              over its rows, as autodiff's does

  python benchmarks/conv_formulations.py                       # cifar10 and mnist_dcgan
  python benchmarks/conv_formulations.py --configs=mnist_dcgan --rounds=5 --steps=10   # smoke run

Each config's own step (mnist_dcgan: R1 penalty, average of G; cifar10: neither), on one fixed
batch on the device, one step per dispatch and, where the config has train.steps_per_call > 1,
that many per dispatch (the steps in a lax.scan, where XLA:CPU runs some gradients of its own
convolutions in a generic loop: jax#12868, benchmarks/conv_fallback.py). Before the steps, two of
cifar10's layers (D's second convolution, G's largest transposed convolution) are timed alone,
forward and VJP, each way.

Reported per config: each side's median steps/s over rounds and the median ratio of matmuls (the
shipped way) to each other side with a percentile-bootstrap 95% interval (benchmarks/timing.py).
The last line of each config, for scripts (grep '^conv_formulations '):
  conv_formulations config=cifar10 isa=avx512 matmuls_steps_s=... xla_steps_s=... custom_vjp_steps_s=...
  matmuls_vs_xla=1.01 [0.95, 1.05] matmuls_vs_custom_vjp=... rounds=7 steps=20
"""
import contextlib
import importlib
import os
import statistics
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import timing  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list('configs', ['cifar10', 'mnist_dcgan'], 'Configs to time, by name in configs/.')
flags.DEFINE_list('sides', ['matmuls', 'xla', 'custom_vjp'], 'Which formulations to time (matmuls is '
                  'always first: the others are compared with it).')
timing.define_flags(20, 3, 'Interleaved rounds.', 'Steps per side per round.', 'Untimed steps per side first.')
SIDES = ('matmuls', 'xla', 'custom_vjp')
_NHWC = ('NHWC', 'HWIO', 'NHWC')


def _custom_vjp_convolutions():
  """models/dcgan.py's two convolutions, each with a VJP whose kernel gradient multiplies the
  windows built tap-major."""
  import jax
  import jax.numpy as jnp

  from gan_jax.models.dcgan import adjoint_kernel as adjoint, block_windows as windows, kernel_matrix as matrix
  from gan_jax.models.dcgan import space_to_depth

  def windows_by_tap(x):  # block_windows(x) as [16c, rows]
    *_, h, w, c = x.shape
    b = jnp.moveaxis(space_to_depth(x), -1, 0)
    return jnp.concatenate([b[..., i:i + h // 2, j:j + w // 2] for i in (0, 1) for j in (0, 1)], axis=0).reshape(16 * c, -1)

  rows = lambda a: a.reshape(-1, a.shape[-1])

  @jax.custom_vjp
  def conv(x, kernel):  # dcgan.conv_4x4_stride_2
    return windows(x) @ matrix(kernel)

  @jax.custom_vjp
  def conv_t(x, kernel):  # dcgan.conv_transpose_4x4_stride_2
    *batch, h, w, _ = x.shape
    out = jax.ShapeDtypeStruct((*batch, 2 * h, 2 * w, kernel.shape[-1]), x.dtype)
    return jax.linear_transpose(windows, out)(x @ matrix(adjoint(kernel)).T)[0]

  def conv_bwd(saved, dy):
    x, kernel = saved
    m, m_vjp = jax.vjp(matrix, kernel)
    return jax.linear_transpose(windows, x)(dy @ m.T)[0], m_vjp(windows_by_tap(x) @ rows(dy))[0]

  def conv_t_bwd(saved, dy):
    x, kernel = saved
    m, m_vjp = jax.vjp(lambda k: matrix(adjoint(k)), kernel)
    return windows(dy) @ m, m_vjp(windows_by_tap(dy) @ rows(x))[0]

  conv.defvjp(lambda x, k: (conv(x, k), (x, k)), conv_bwd)
  conv_t.defvjp(lambda x, k: (conv_t(x, k), (x, k)), conv_t_bwd)
  return conv, conv_t


@contextlib.contextmanager
def formulation(side: str):
  """models/dcgan.py's two convolutions replaced, while the step is traced, by `side`'s."""
  from jax import lax
  from gan_jax.models import dcgan
  shipped = dcgan.conv_4x4_stride_2, dcgan.conv_transpose_4x4_stride_2
  if side == 'custom_vjp':
    dcgan.conv_4x4_stride_2, dcgan.conv_transpose_4x4_stride_2 = _custom_vjp_convolutions()
  elif side == 'xla':
    dcgan.conv_4x4_stride_2 = lambda x, k: lax.conv_general_dilated(x, k, (2, 2), 'SAME', dimension_numbers=_NHWC)
    dcgan.conv_transpose_4x4_stride_2 = lambda x, k: lax.conv_transpose(x, k, (2, 2), 'SAME', dimension_numbers=_NHWC)
  try:
    yield
  finally:
    dcgan.conv_4x4_stride_2, dcgan.conv_transpose_4x4_stride_2 = shipped


def sides_asked():
  unknown = set(FLAGS.sides) - set(SIDES)
  if unknown:
    raise app.UsageError(f'--sides: unknown {sorted(unknown)}; choose from {", ".join(SIDES)}')
  return ['matmuls'] + [s for s in SIDES[1:] if s in FLAGS.sides]


def one_layer(rounds: int):
  """ms of two of cifar10's layers alone, forward and VJP with respect to both inputs, each way
  (each side's function traced under its formulation): D's second convolution (64×16×16×64 →
  64×8×8×128) and G's largest transposed convolution (64×8×8×128 → 64×16×16×64)."""
  import jax
  import numpy as np
  from gan_jax.models import dcgan
  key = jax.random.split(jax.random.PRNGKey(0), 6)
  layers = {  # name: (the dcgan function's name, x, kernel, dy)
      'D conv 2': ('conv_4x4_stride_2', jax.random.normal(key[0], (64, 16, 16, 64)),
                   0.05 * jax.random.normal(key[1], (4, 4, 64, 128)), jax.random.normal(key[2], (64, 8, 8, 128))),
      'G transposed conv 2': ('conv_transpose_4x4_stride_2', jax.random.normal(key[3], (64, 8, 8, 128)),
                              0.05 * jax.random.normal(key[4], (4, 4, 128, 64)), jax.random.normal(key[5], (64, 16, 16, 64)))}
  for layer, (fn_name, x, kernel, dy) in layers.items():
    fns, shipped = {}, None
    for side in sides_asked():
      with formulation(side):
        # the output returned too: otherwise XLA drops the forward product, which the VJP never reads
        f = jax.jit(lambda x, k, conv=getattr(dcgan, fn_name), dy=dy: (lambda y, vjp: (y, *vjp(dy)))(
            *jax.vjp(conv, x, k))).lower(x, kernel).compile()
      grads = f(x, kernel)
      shipped = shipped or grads
      for ours, theirs in zip(grads, shipped):
        if not np.allclose(ours, theirs, rtol=1e-3, atol=1e-3):
          raise SystemExit(f'{side}: the output or gradients of {layer} differ from the shipped convolution\'s')
      fns[side] = lambda f=f, x=x, kernel=kernel: jax.block_until_ready(f(x, kernel))
    result = timing.round_robin(fns, {n: 5 for n in fns}, rounds, {n: 1 for n in fns})
    flop = 3 * 2 * 64 * 8 * 8 * 16 * 64 * 128  # both layers: the same products, one the other's adjoint
    for n in fns:
      ms = statistics.median(r[n][0] for r in result) / 5 * 1e3
      print(f'  cifar10 {layer} alone, forward + VJP, {n:10s}: {ms:7.2f} ms ({flop / ms / 1e6:.0f} GFLOP/s)')


def sides(c):
  """{side name: one waited dispatch}, {side name: steps per dispatch}."""
  import functools
  import jax
  import numpy as np
  from gan_jax import experiment, step
  from gan_jax.data import synthetic
  real = timing.random_batch(c)
  spec, state = experiment.build_models(c, synthetic.ArraySource(real))
  k, n = c.train.k, c.train.steps_per_call
  batches = {1: jax.device_put(np.broadcast_to(real, (k,) + real.shape))}
  makers = {1: step.train_step}
  if n > 1:
    batches[n] = jax.device_put(np.broadcast_to(real, (n, k) + real.shape))
    makers[n] = step.train_steps
  fns, per_call, first = {}, {}, {}
  for s in sides_asked():
    for m, fn in makers.items():
      name = s if m == 1 else f'{s} x{m}'
      box = [jax.tree.map(lambda a: a.copy(), state)]
      with formulation(s):  # traced and compiled here, with this side's convolutions; a new
        # function object each time, so that jit's trace cache cannot hand one side another's
        compiled = jax.jit(functools.partial(fn, spec), donate_argnums=(0,)).lower(box[0], batches[m]).compile()

      box[0], metrics = compiled(box[0], batches[m])  # the first step: the same losses every way
      first.setdefault(m, metrics)
      for key in ('d_loss', 'g_loss'):  # (over ten steps the game's chaos amplifies rounding)
        ours, shipped = np.ravel(metrics[key])[0], np.ravel(first[m][key])[0]
        if not np.allclose(ours, shipped, rtol=1e-3, atol=1e-5):
          raise SystemExit(f'{name}: {key} {ours} after one step, the shipped convolutions give {shipped}')

      def run(compiled=compiled, box=box, batch=batches[m]):
        box[0], metrics = compiled(box[0], batch)
        jax.block_until_ready(metrics)
      fns[name], per_call[name] = run, m
  return fns, per_call


def main(argv):
  del argv
  timing.limit_isa(FLAGS.isa)
  print(timing.set_host_memory(FLAGS.host_memory))
  import jax
  print(f'{timing.cpu_info()}; jax {jax.__version__}; {timing.isa_facts()[2][0]}')
  one_layer(FLAGS.rounds)
  for name in FLAGS.configs:
    try:
      c = importlib.import_module(f'configs.{name}').get_config()
    except ModuleNotFoundError:
      raise app.UsageError(f'--configs: no configs/{name}.py')
    if (c.model.generator, c.model.discriminator) != ('dcgan', 'dcgan'):
      raise app.UsageError(f'--configs={name} uses {c.model.generator}/{c.model.discriminator}, not the dcgan pair')
    fns, per_call = sides(c)
    calls = {s: max(1, FLAGS.steps // per_call[s]) for s in fns}
    result = timing.round_robin(fns, calls, FLAGS.rounds, {s: max(1, FLAGS.warmup // per_call[s]) for s in fns})
    rate = lambda r, s: calls[s] * per_call[s] / r[s][0]
    print(f'{name}: batch {c.train.batch_size}, k={c.train.k}, R1 {c.train.r1_gamma}, average of G '
          f'{c.train.ema_decay}; {FLAGS.rounds} rounds of {FLAGS.steps} steps per side; steps/s (median)')
    summary = [f'conv_formulations config={name} isa={timing.xla_max_isa() or timing.cpu_isa()}']
    for s in fns:
      print(f'  {s:16s} {statistics.median(rate(r, s) for r in result):7.2f}')
      summary.append(f'{s.replace(" ", "_")}_steps_s={statistics.median(rate(r, s) for r in result):.2f}')
    for s in fns:
      base = 'matmuls' + s[len(s.split(' ')[0]):]
      if s == base:
        continue
      m, lo, hi = timing.median_interval([rate(r, base) / rate(r, s) for r in result], FLAGS.bootstrap)
      print(f'  {base} / {s}: {m:.2f}× [{lo:.2f}, {hi:.2f}]')
      summary.append(f'{base.replace(" ", "_")}_vs_{s.split(" ")[0]}={m:.2f} [{lo:.2f}, {hi:.2f}]')
    print(' '.join(summary + [f'rounds={FLAGS.rounds} steps={FLAGS.steps}']))


if __name__ == '__main__':
  app.run(main)
