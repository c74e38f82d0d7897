"""gan_jax.inception against pytorch-fid and torch-fidelity, with the same random weights.

  python -m venv .venv-bench && .venv-bench/bin/pip install -r requirements.txt \
      -r benchmarks/requirements-bench.txt
  .venv-bench/bin/python benchmarks/inception_equivalence.py

The real weights cannot be downloaded here, so pytorch-fid's own `fid_inception_v3()` is built
with its download replaced by random weights (convolutions, fc, and every batch-norm statistic),
saved as a .pth, and read by `gan_jax.inception.load_params` (through torch, and through the
.npz that `--convert` writes). Checks, one line each, PASS or FAIL (exit 1 on any FAIL):
parameter count; the 299x299 bilinear resize against torch's F.interpolate; pool3 features and
logits against pytorch-fid's InceptionV3 (resize + [-1, 1] + blocks) at 32x32 and 299x299;
metrics.frechet_distance against pytorch-fid's calculate_frechet_distance; inception_score
against torch-fidelity's. Then the images/s of `features` on 32x32 images (jitted, after warm-up),
and of pytorch-fid on a few of them for context.
"""
import os
import sys
import tempfile
import time
from unittest import mock

from absl import app
from absl import flags
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FLAGS = flags.FLAGS
flags.DEFINE_integer('images', 4, 'Random images per size for the feature checks.')
flags.DEFINE_integer('batch', 2, 'Batch size of gan_jax.inception.features in the checks.')
flags.DEFINE_integer('time_images', 1000, '32x32 images timed (0: no timing).')
flags.DEFINE_integer('time_batch', 50, 'Batch size for the timing.')
flags.DEFINE_integer('time_torch_images', 100, 'Of those, timed through pytorch-fid too, for context (0: none).')
flags.DEFINE_float('feature_tol', 1e-4, 'Max |ours - torch| / max |torch| for features and logits.')
flags.DEFINE_float('fid_tol', 1e-6, 'Relative tolerance of the Fréchet distance.')
flags.DEFINE_integer('seed', 0, 'Seed of the weights, images, features and logits.')

_failures = []


def report(name, ok, text):
  print(f'{"PASS" if ok else "FAIL"}  {name}: {text}', flush=True)
  if not ok:
    _failures.append(name)


def random_torch_model(seed):
  """pytorch-fid's FID InceptionV3 (its own code), with random weights instead of the download."""
  import torch
  import pytorch_fid.inception as pfi
  g = torch.Generator().manual_seed(seed)
  # fid_inception_v3 strict-loads the downloaded state dict; hand it nothing and skip the load
  with mock.patch.object(pfi, 'load_state_dict_from_url', lambda *a, **k: {}), \
       mock.patch.object(torch.nn.Module, 'load_state_dict', lambda *a, **k: None):
    model = pfi.fid_inception_v3()
  with torch.no_grad():
    for name, t in model.state_dict().items():
      if name.endswith('conv.weight'):  # He-normal keeps activations O(1) through 94 layers
        t.copy_(torch.randn(t.shape, generator=g) * np.sqrt(2.0 / t[0].numel()))
      elif name.endswith('bn.weight'):
        t.copy_(0.5 + torch.rand(t.shape, generator=g))
      elif name.endswith('bn.bias') or name.endswith('running_mean'):
        t.copy_(0.2 * torch.randn(t.shape, generator=g))
      elif name.endswith('running_var'):
        t.copy_(0.5 + 1.5 * torch.rand(t.shape, generator=g))
      elif name.startswith('fc.'):
        t.copy_(torch.randn(t.shape, generator=g) / np.sqrt(2048.0))
  return model.eval()


def rel_errors(ours, ref):
  """(max abs error, max abs error / max |ref|, max elementwise rel error where |ref| > 1% of max)."""
  ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
  err, scale = np.abs(ours - ref), np.abs(ref).max()
  big = np.abs(ref) > 0.01 * scale
  return err.max(), err.max() / scale, (err[big] / np.abs(ref[big])).max()


def check_weights(model, tmp):
  import torch
  from gan_jax.eval import inception
  pth, npz = os.path.join(tmp, 'random_fid_inception.pth'), os.path.join(tmp, 'random.npz')
  torch.save(model.state_dict(), pth)
  variables = inception.load_params(pth)
  inception.main(['--convert', pth, npz])
  from_npz = inception.load_params(npz)
  import jax
  same = jax.tree_util.tree_all(jax.tree_util.tree_map(lambda a, b: bool((a == b).all()), variables, from_npz))
  report('npz', same, '.pth read with torch and its --convert .npz give identical variables')
  ours = sum(v.size for v in jax.tree_util.tree_leaves(variables['params']))
  theirs = sum(p.numel() for p in model.parameters())
  report('parameters', ours == theirs, f'flax {ours:,}, pytorch-fid {theirs:,}')
  return variables


def check_resize(rng):
  import torch
  import torch.nn.functional as F
  from gan_jax.eval import inception
  for shape in ((3, 32, 32, 3), (2, 28, 40, 1), (2, 417, 350, 3)):  # up, non-square grey, down
    x = rng.random(shape, dtype=np.float32)
    t = torch.from_numpy(x).permute(0, 3, 1, 2)
    t = t.expand(-1, 3, -1, -1) if shape[-1] == 1 else t
    ref = 2 * F.interpolate(t, size=(299, 299), mode='bilinear', align_corners=False) - 1
    ours = np.asarray(inception.preprocess(x))
    err = np.abs(ours - ref.permute(0, 2, 3, 1).numpy()).max()
    report(f'resize {shape[1]}x{shape[2]}x{shape[3]}', err <= 1e-5, f'max abs error {err:.2e} (values in [-1, 1])')


def pytorch_fid_wrapper(model):
  """pytorch-fid's InceptionV3([3]) (resize, [-1, 1], blocks 0-3) around `model`."""
  import pytorch_fid.inception as pfi
  with mock.patch.object(pfi, 'fid_inception_v3', lambda: model):
    return pfi.InceptionV3([3], use_fid_inception=True).eval()


def check_features(model, variables, rng):
  import torch
  from gan_jax.eval import inception
  wrapper = pytorch_fid_wrapper(model)
  for size in (32, 299):
    x = rng.random((FLAGS.images, size, size, 3), dtype=np.float32)
    with torch.no_grad():
      pool3 = wrapper(torch.from_numpy(x).permute(0, 3, 1, 2))[0].flatten(1)
      logits, unbiased = model.fc(pool3), pool3 @ model.fc.weight.T
    ours_pool3, ours_logits = inception.features(variables, x, batch_size=FLAGS.batch, fc_bias=True)
    _, ours_unbiased = inception.features(variables, x, batch_size=FLAGS.batch)
    for name, ours, ref in (('pool3', ours_pool3, pool3), ('logits', ours_logits, logits),
                            ('logits (no bias)', ours_unbiased, unbiased)):
      abs_err, rel_scale, rel_elem = rel_errors(ours, ref.numpy())
      report(f'{name} {size}x{size}', rel_scale <= FLAGS.feature_tol,
             f'max abs error {abs_err:.2e}, / max|torch| {rel_scale:.2e}, max rel error {rel_elem:.2e} '
             f'(max|torch| {np.abs(ref.numpy()).max():.3g}, {FLAGS.images} images)')
  return x


def compare_torch_fidelity_extractor(variables, tmp, x299):
  """Not a check: torch-fidelity's own extractor takes uint8 and scales by (x - 128) / 128, so its
  logits differ from pytorch-fid's (and ours) by that input scaling alone."""
  import torch
  from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
  from gan_jax.eval import inception
  fe = FeatureExtractorInceptionV3('inception-v3-compat', ['logits_unbiased'],
                                   feature_extractor_weights_path=os.path.join(tmp, 'random_fid_inception.pth'))
  u8 = np.round(x299 * 255).astype(np.uint8)
  with torch.no_grad():
    ref = fe(torch.from_numpy(u8).permute(0, 3, 1, 2))[0].numpy()
  _, ours = inception.features(variables, u8.astype(np.float32) / 255, batch_size=FLAGS.batch)
  # x / 256 in [0, 1) becomes (x - 128) / 128 after our 2x - 1: torch-fidelity's own scaling
  _, ours_256 = inception.features(variables, u8.astype(np.float32) / 256, batch_size=FLAGS.batch)
  print(f'INFO  torch-fidelity extractor vs ours, same uint8 299x299 images: logits max abs diff '
        f'{np.abs(ours - ref).max():.2e} with pixels / 255 (pytorch-fid), {np.abs(ours_256 - ref).max():.2e} '
        f'with pixels / 256 (torch-fidelity\'s (x - 128) / 128)')


def check_fid(rng):
  from pytorch_fid.fid_score import calculate_frechet_distance
  from gan_jax.eval import metrics
  d, n = 2048, 4000
  # non-negative, correlated, with a decaying spectrum, as pool3 features of ReLU maps are
  mix = rng.standard_normal((d, d)) * np.exp(-np.arange(d) / 300.0)[:, None] / np.sqrt(d)
  a = np.abs(rng.standard_normal((n, d)) @ mix + 0.3)
  b = np.abs(rng.standard_normal((n, d)) @ (mix * 1.1) + 0.35)
  ours = metrics.frechet_distance(a, b)
  stats = [(f.mean(0), np.cov(f, rowvar=False)) for f in (a, b)]
  theirs = float(calculate_frechet_distance(*stats[0], *stats[1]))
  rel = abs(ours - theirs) / abs(theirs)
  report('frechet distance', rel <= FLAGS.fid_tol,
         f'ours {ours:.10g}, pytorch-fid {theirs:.10g}, rel error {rel:.2e} ({n} x {d} features)')
  if rel > FLAGS.fid_tol:  # is it the ridge frechet_distance always adds (pytorch-fid: only if singular)?
    ridge = 1e-6 * np.eye(d)
    with_ridge = float(calculate_frechet_distance(stats[0][0], stats[0][1] + ridge, stats[1][0], stats[1][1] + ridge))
    print(f'INFO  pytorch-fid with 1e-6 added to both covariances: {with_ridge:.10g}, rel error to ours '
          f'{abs(ours - with_ridge) / abs(with_ridge):.2e}')


def check_inception_score(rng):
  import torch
  from torch_fidelity.metric_isc import isc_features_to_metric
  from gan_jax.eval import inception
  logits = 4.0 * rng.standard_normal((5000, 1008))
  logits[np.arange(5000), rng.integers(0, 1000, 5000)] += 8.0  # confident, varied predictions
  for shuffle in (True, False):
    ref = isc_features_to_metric(torch.from_numpy(logits), splits=10, shuffle=shuffle, rng_seed=2020)
    ours = inception.inception_score(logits, splits=10, shuffle_seed=2020 if shuffle else None)
    theirs = (ref['inception_score_mean'], ref['inception_score_std'])
    rel = max(abs(o - t) / abs(t) for o, t in zip(ours, theirs))
    report(f'inception score (shuffle={shuffle})', rel <= 1e-10,
           f'ours {ours[0]:.10g} ± {ours[1]:.6g}, torch-fidelity {theirs[0]:.10g} ± {theirs[1]:.6g}, '
           f'rel error {rel:.1e}')


def time_features(model, variables, rng):
  import jax
  import torch
  from gan_jax.eval import inception
  x = rng.random((FLAGS.time_images, 32, 32, 3), dtype=np.float32)
  inception.features(variables, x[:FLAGS.time_batch], batch_size=FLAGS.time_batch)  # compile
  t0 = time.perf_counter()
  inception.features(variables, x, batch_size=FLAGS.time_batch)
  dt = time.perf_counter() - t0
  print(f'TIME  features: {FLAGS.time_images} images 32x32 (resized to 299) in {dt:.1f} s = '
        f'{FLAGS.time_images / dt:.2f} images/s, batch {FLAGS.time_batch}, '
        f'{jax.devices()[0].platform} ({os.cpu_count()} cores)')
  if FLAGS.time_torch_images:
    wrapper, n = pytorch_fid_wrapper(model), FLAGS.time_torch_images
    t = torch.from_numpy(x[:n]).permute(0, 3, 1, 2)
    with torch.no_grad():
      wrapper(t[:FLAGS.time_batch])  # warm-up
      t0 = time.perf_counter()
      for start in range(0, n, FLAGS.time_batch):
        wrapper(t[start:start + FLAGS.time_batch])
      dt = time.perf_counter() - t0
    print(f'TIME  pytorch-fid (context): {n} images in {dt:.1f} s = {n / dt:.2f} images/s, '
          f'batch {FLAGS.time_batch}, {torch.get_num_threads()} threads')


def main(argv):
  del argv
  import torch
  import pytorch_fid
  import torch_fidelity
  torch.set_num_threads(os.cpu_count())
  print(f'torch {torch.__version__}, pytorch-fid {pytorch_fid.__version__}, '
        f'torch-fidelity {torch_fidelity.__version__}')
  rng = np.random.default_rng(FLAGS.seed)
  model = random_torch_model(FLAGS.seed)
  with tempfile.TemporaryDirectory() as tmp:
    variables = check_weights(model, tmp)
    check_resize(rng)
    x299 = check_features(model, variables, rng)
    compare_torch_fidelity_extractor(variables, tmp, x299)
  check_fid(rng)
  check_inception_score(rng)
  if FLAGS.time_images:
    time_features(model, variables, rng)
  print(f'{len(_failures)} failed: {", ".join(_failures)}' if _failures else 'all checks passed')
  sys.exit(1 if _failures else 0)


if __name__ == '__main__':
  app.run(main)
