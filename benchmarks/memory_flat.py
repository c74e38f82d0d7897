"""Host memory does not grow with the dataset: the peak RSS of the same training run on a folder of
--small and of --large 64×64 RGB images must differ by < 100 MB.

  python benchmarks/memory_flat.py                      # 2,000 and 20,000 images under /tmp
  python benchmarks/memory_flat.py --large=50000 --steps=400

Writes two folders of deterministic, structured PNGs (smooth colour gradients and waves plus
noise, so each file is a realistic few KB, not a constant), then runs the same `launch.py` command
(configs/folder.py, a small dcgan pair) on each, twice: the first run decodes the folder once into
the record cache, the second trains from that cache in a fresh workdir. Each run is a child
process whose own peak RSS comes from os.wait4; the decode time from its log. Folders are reused
when complete; the cache and workdirs are made afresh every time, so the first run always decodes.
"""
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

from absl import app
from absl import flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

FLAGS = flags.FLAGS
flags.DEFINE_integer('small', 2000, 'Images in the small folder.')
flags.DEFINE_integer('large', 20000, 'Images in the large folder.')
flags.DEFINE_string('scratch', '/tmp/gan_jax_memory', 'Folders, record cache, workdirs and logs go here.')
flags.DEFINE_integer('seed', 0, 'Seed of the generated images.')
flags.DEFINE_integer('steps', 200, 'Training steps per run.')
flags.DEFINE_integer('every', 100, 'Log, evaluation (sample grid) and checkpoint interval, in steps.')
flags.DEFINE_integer('batch', 64, 'Batch size.')
flags.DEFINE_integer('width', 16, 'dcgan width of G and D (configs/folder.py uses 64; small keeps it quick).')
flags.DEFINE_multi_string('launch_flag', [], 'More launch.py flags for every run, e.g. '
                          '--launch_flag=--config.data.prefetch=0.')
flags.DEFINE_float('limit_mb', 100.0, 'Largest allowed difference of peak RSS, large - small.')
flags.DEFINE_integer('repeats', 1, 'Runs of each kind per folder; the table shows their median. The '
                     'peak RSS of one command varies by a few tens of MB from run to run (XLA compiles '
                     'on a thread pool), so repeats sharpen the comparison.')

SIZE = 64
PER_DIR = 1000  # files per subfolder: the folder source searches recursively
_DONE = 'COMPLETE.json'  # not an image name, so the folder source ignores it


def images(seed: int, start: int, count: int):
  """uint8 [count, 64, 64, 3]: image i depends on (seed, i) alone, so folders share a prefix."""
  import numpy as np
  yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / SIZE
  out = np.empty((count, SIZE, SIZE, 3), np.uint8)
  for j in range(count):
    rng = np.random.default_rng([seed, start + j])
    angle, freq, phase = rng.uniform(0, 2 * np.pi), rng.uniform(1, 6), rng.uniform(0, 2 * np.pi)
    t = np.cos(angle) * xx + np.sin(angle) * yy
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    wave = 40 * np.sin(2 * np.pi * freq * (xx * rng.uniform(-1, 1) + yy * rng.uniform(-1, 1)) + phase)
    img = c0 + (c1 - c0) * t[..., None] + wave[..., None] + rng.normal(0, 8, (SIZE, SIZE, 3))
    out[j] = np.clip(img, 0, 255)
  return out


def make_folder(path: str, count: int, seed: int) -> float:
  """Writes `count` PNGs under `path` unless a complete copy is there; returns its size in MB."""
  import PIL.Image
  stamp = {'count': count, 'seed': seed, 'size': SIZE}
  try:
    with open(os.path.join(path, _DONE)) as f:
      if json.load(f) == stamp:
        return _megabytes(path)
  except (OSError, ValueError):
    pass
  shutil.rmtree(path, ignore_errors=True)
  t0 = time.monotonic()
  for start in range(0, count, PER_DIR):
    sub = os.path.join(path, f'{start // PER_DIR:04d}')
    os.makedirs(sub)
    for j, image in enumerate(images(seed, start, min(PER_DIR, count - start))):
      PIL.Image.fromarray(image).save(os.path.join(sub, f'{start + j:06d}.png'))
  with open(os.path.join(path, _DONE), 'w') as f:
    json.dump(stamp, f)
  print(f'wrote {count} images to {path} in {time.monotonic() - t0:.0f} s', flush=True)
  return _megabytes(path)


def _megabytes(path: str) -> float:
  return sum(os.path.getsize(os.path.join(r, n)) for r, _, names in os.walk(path) for n in names) / 2**20


def command(folder: str, workdir: str):
  return [sys.executable, os.path.join(ROOT, 'launch.py'), '--config=' + os.path.join(ROOT, 'configs', 'folder.py'),
          f'--config.data.path={folder}', f'--config.data.cache_dir={os.path.join(FLAGS.scratch, "cache")}',
          f'--workdir={workdir}', f'--config.train.num_steps={FLAGS.steps}',
          f'--config.train.batch_size={FLAGS.batch}',
          f'--config.model.g_kwargs.width={FLAGS.width}', f'--config.model.d_kwargs.width={FLAGS.width}',
          f'--config.log_every_steps={FLAGS.every}', f'--config.eval_every_steps={FLAGS.every}',
          f'--config.checkpoint_every_steps={FLAGS.every}', *FLAGS.launch_flag]


def run(folder: str, workdir: str, log: str) -> dict:
  """One training run as a child process: its peak RSS (os.wait4 gives this child's own), wall
  time and decode time. A failed run ends the benchmark with its log's last lines."""
  shutil.rmtree(workdir, ignore_errors=True)
  cmd = command(folder, workdir)
  t0 = time.monotonic()
  with open(log, 'w') as out:
    child = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    _, status, usage = os.wait4(child.pid, 0)
  child.returncode = os.waitstatus_to_exitcode(status)  # reaped above: keep Popen from waiting
  wall = time.monotonic() - t0
  with open(log) as f:
    text = f.read()
  if child.returncode:
    tail = '\n'.join(text.strip().splitlines()[-15:])
    print(f'error: run failed (exit {child.returncode}): {" ".join(cmd)}\n{tail}', file=sys.stderr)
    sys.exit(2)
  decoded = re.search(r'Decoded (\d+) examples of .* in ([\d.]+) s', text)
  rates = re.findall(r'([\d.]+) steps/s', text)
  return {'peak_mb': usage.ru_maxrss / 1024,  # kilobytes on Linux
          'wall_s': wall, 'decode_s': float(decoded.group(2)) if decoded else None,
          'steps_per_s': float(rates[-1]) if rates else None, 'cmd': cmd}


def _median(runs, key):
  values = [r[key] for r in runs if r[key] is not None]
  return statistics.median(values) if values else None


def _cell(runs, unit=' MB'):
  """Median peak RSS over the repeats, and their range when there are several."""
  peaks = [r['peak_mb'] for r in runs]
  spread = f' ({min(peaks):.0f}–{max(peaks):.0f})' if len(peaks) > 1 else ''
  return f'{statistics.median(peaks):.0f}{unit}{spread}'


def table(rows):
  print('\nsame command for each folder (workdir and path differ):\n  ' + ' '.join(rows[FLAGS.small][1][0]['cmd']))
  width = 17 if FLAGS.repeats == 1 else 28
  print(f'\n{"images":>8}{"PNG MB":>8}{"decode s":>10}{"records MB":>12}{"peak RSS first":>{width}}'
        f'{"peak RSS cached":>{width}}{"steps/s":>9}')
  for n, (disk, firsts, cacheds) in rows.items():
    decode, rate = _median(firsts, 'decode_s'), _median(cacheds, 'steps_per_s')
    print(f'{n:>8}{disk:>8.0f}{"?" if decode is None else f"{decode:.1f}":>10}{n * SIZE * SIZE * 3 / 2**20:>12.0f}'
          f'{_cell(firsts):>{width}}{_cell(cacheds):>{width}}{float("nan") if rate is None else rate:>9.1f}')
  peak = lambda runs: statistics.median(r['peak_mb'] for r in runs)
  small, large = rows[FLAGS.small], rows[FLAGS.large]
  d_first, d_cached = peak(large[1]) - peak(small[1]), peak(large[2]) - peak(small[2])
  print(f'{"large−small":<38}{f"{d_first:+.0f} MB":>{width}}{f"{d_cached:+.0f} MB":>{width}}')
  worst = max(abs(d_first), abs(d_cached))
  print(f'\npeak RSS difference, {FLAGS.large} vs {FLAGS.small} images: {d_first:+.0f} MB (decode + train), '
        f'{d_cached:+.0f} MB (train from cache); < {FLAGS.limit_mb:g} MB: {"yes" if worst < FLAGS.limit_mb else "no"}')


def main(argv):
  del argv
  if sys.platform != 'linux':
    print('error: this benchmark reads ru_maxrss in kilobytes, as Linux reports it.', file=sys.stderr)
    sys.exit(2)
  scratch = FLAGS.scratch
  os.makedirs(scratch, exist_ok=True)
  rows = {}
  for n in (FLAGS.small, FLAGS.large):
    folder = os.path.join(scratch, f'images_{n}')
    disk = make_folder(folder, n, FLAGS.seed)
    firsts, cacheds = [], []
    for r in range(FLAGS.repeats):
      shutil.rmtree(os.path.join(scratch, 'cache'), ignore_errors=True)  # so the first run decodes
      firsts.append(run(folder, os.path.join(scratch, f'wd_{n}'), os.path.join(scratch, f'log_{n}_first_{r}.txt')))
      cacheds.append(run(folder, os.path.join(scratch, f'wd_{n}_cached'), os.path.join(scratch, f'log_{n}_cached_{r}.txt')))
      if cacheds[-1]['decode_s'] is not None:
        print(f'warning: the second run on {n} images decoded again: the cache was not used.', file=sys.stderr)
      print(f'{n} images, run {r + 1}: peak RSS {firsts[-1]["peak_mb"]:.0f} MB (decode + train), '
            f'{cacheds[-1]["peak_mb"]:.0f} MB (train from cache), {firsts[-1]["wall_s"] + cacheds[-1]["wall_s"]:.0f} s; '
            f'logs in {scratch}', flush=True)
    rows[n] = (disk, firsts, cacheds)
  table(rows)


if __name__ == '__main__':
  app.run(main)
