"""Fault injection: a ring2d run killed (SIGKILL) at many random moments, its newest checkpoint
damaged in every way the program claims to survive, restarted each time with the same command,
then compared with the same run left alone.

  python benchmarks/fault_injection.py                 # 30 faults, ~3 minutes on 2 cores
  python benchmarks/fault_injection.py --faults=100 --seed=1

Each fault is a kill at a random moment: of the start-up (restore, moving a damaged step aside,
compiling) one time in six, else within the next three checkpoint intervals of training
(mid-step, mid-save, mid-evaluation); about half are followed by damage to the newest checkpoint (each kind in benchmarks/checkpoint_damage.py, in turn). After
each restart the script checks: no traceback, the step it resumed from is the newest checkpoint
that was intact at the kill (0 steps lost beyond it), and a damaged step was moved aside. At the
end the final parameters must equal an uninterrupted run's bit for bit. It prints one line:
"N faults, T tracebacks, L steps lost beyond the last checkpoint, final parameters bit-identical
to an uninterrupted run" and exits 1 if any of those is not so.
"""
import glob
import os
import random
import shutil
import signal
import subprocess
import sys
import time

from absl import app
from absl import flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.checkpoint_damage import DAMAGE  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer('faults', 30, 'Number of kills to inject.')
flags.DEFINE_integer('seed', 0, 'Seed of the kill times and damage choices.')
flags.DEFINE_integer('steps', 6000, 'Training steps of the run.')
flags.DEFINE_integer('every', 100, 'Checkpoint (and log) interval in steps.')
flags.DEFINE_string('scratch', '/tmp/gan_jax_faults', 'Workdirs and logs go here (made afresh).')


# --- the run -----------------------------------------------------------------------------------

def _command(workdir):
  return [sys.executable, 'launch.py', '--config=configs/ring2d.py', f'--workdir={workdir}',
          '--config.mesh.platform=cpu', '--config.mesh.num_devices=1',
          f'--config.train.num_steps={FLAGS.steps}', f'--config.checkpoint_every_steps={FLAGS.every}',
          '--config.log_every_steps=10', f'--config.eval_every_steps={FLAGS.every // 2}',
          '--config.max_checkpoints_to_keep=3']


def _steps(workdir):
  d = os.path.join(workdir, 'checkpoints')
  return sorted(int(n) for n in os.listdir(d) if n.isdigit()) if os.path.isdir(d) else []


def _moved_count(workdir, step):
  return len(glob.glob(os.path.join(workdir, 'checkpoints_damaged', f'{step}-*')))


def _resumed_from(text):
  marker = 'Resumed from the checkpoint at step '
  return int(text.split(marker)[1].split()[0]) if marker in text else 0


def _logged_step(text):
  marks = text.split(f'/{FLAGS.steps} (')
  return int(marks[-2].rsplit('step ', 1)[1]) if len(marks) > 1 else 0


def _run_killed(workdir, log_path, rng, resume_step):
  """Starts the run and kills it: one time in six at a random moment of its start-up (restore,
  moving a damaged step aside, compiling), otherwise at a random moment within the next three
  checkpoint intervals of training (mid-step, mid-save, mid-evaluation). Returns 'killed', or
  'finished' / 'failed' when it exited by itself first."""
  with open(log_path, 'w') as log:
    proc = subprocess.Popen(_command(workdir), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    if rng.random() < 1 / 6:
      time.sleep(rng.uniform(0.5, 5.0))
    else:
      target = resume_step + rng.randint(1, 3 * FLAGS.every)
      while proc.poll() is None and _logged_step(open(log_path).read()) < target:
        time.sleep(0.02)
      time.sleep(rng.uniform(0.0, 0.3))
    if proc.poll() is not None:
      return 'finished' if proc.returncode == 0 else 'failed'
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return 'killed'


def _final_params(workdir):
  from configs import ring2d
  from gan_jax import train
  from gan_jax.checkpoint import Checkpoints
  c = ring2d.get_config()
  c.mesh.platform, c.mesh.num_devices = 'cpu', 1
  exp = train.setup(c)
  ckpt = Checkpoints(workdir, read_only=True)
  state, _ = ckpt.restore(FLAGS.steps, exp.init_state)
  return state


def main(argv):
  del argv
  rng = random.Random(FLAGS.seed)
  shutil.rmtree(FLAGS.scratch, ignore_errors=True)
  whole, faulty = os.path.join(FLAGS.scratch, 'whole'), os.path.join(FLAGS.scratch, 'faulty')
  os.makedirs(FLAGS.scratch)
  t0 = time.time()
  reference = subprocess.run(_command(whole), cwd=ROOT, capture_output=True, text=True)
  if reference.returncode:
    sys.exit(f'error: the uninterrupted run failed:\n{reference.stderr[-2000:]}')
  faults = tracebacks = lost = damaged = failed = 0
  expected = 0  # the step the next run must resume from: the newest intact checkpoint

  def check(text):
    nonlocal tracebacks, lost
    tracebacks += text.count('Traceback')
    if 'Training ' not in text:
      return  # killed during start-up, before it said where it resumed
    resumed = _resumed_from(text)
    lost += max(0, expected - resumed)
    if resumed != expected:
      print(f'  resumed from step {resumed}, expected {expected}', flush=True)

  broken = {}  # steps damaged and not yet moved aside (a start-up kill can precede that): moved count
  for i in range(FLAGS.faults):
    log = os.path.join(FLAGS.scratch, f'run_{i:03d}.log')
    outcome = _run_killed(faulty, log, rng, expected)
    text = open(log).read()
    check(text)
    # a damaged step that was moved aside may since have been saved afresh under the same number
    broken = {s: n for s, n in broken.items() if _moved_count(faulty, s) == n}
    if outcome == 'failed':
      failed += 1
      print(f'  the run exited with an error: {open(log).read().strip().splitlines()[-1][:300]}', flush=True)
    if outcome != 'killed':
      break  # the run ended before this kill landed
    faults += 1
    steps = _steps(faulty)
    intact = [s for s in steps if s not in broken]
    expected = intact[-1] if intact else 0
    if len(intact) >= 2 and steps[-1] not in broken and rng.random() < 0.5:
      kind = DAMAGE[damaged % len(DAMAGE)]
      kind(os.path.join(faulty, 'checkpoints', str(steps[-1])))
      damaged += 1
      broken[steps[-1]] = _moved_count(faulty, steps[-1])
      expected = intact[-2]
      print(f'fault {faults}: killed after step {steps[-1]} was saved, then {kind.__name__} on it', flush=True)
    else:
      print(f'fault {faults}: killed; newest checkpoint at step {expected}', flush=True)
  final = subprocess.run(_command(faulty), cwd=ROOT, capture_output=True, text=True)
  check(final.stdout + final.stderr)
  failed += final.returncode != 0
  import chex
  from absl import logging
  logging.set_verbosity(logging.WARNING)  # orbax's restore chatter
  try:
    chex.assert_trees_all_equal(_final_params(whole), _final_params(faulty))
    same = True
  except Exception:  # noqa: BLE001  (unequal, or the faulty run never reached the last step)
    same = False
  moved = len(os.listdir(os.path.join(faulty, 'checkpoints_damaged'))) if damaged else 0
  print(f'{faults} faults ({damaged} with checkpoint damage, {moved} damaged steps moved aside), '
        f'{failed} runs ending in an error, {tracebacks} tracebacks, {lost} steps lost beyond the last checkpoint, final parameters '
        f'{"bit-identical to" if same else "DIFFERENT from"} an uninterrupted run '
        f'({time.time() - t0:.0f} s)')
  sys.exit(0 if same and not (tracebacks or lost or failed) and moved == damaged else 1)


if __name__ == '__main__':
  app.run(main)
