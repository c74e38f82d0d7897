"""Reproduces XLA:CPU's collective deadlock with many simulated devices on few cores: the step and
the stop agreement (each with an all-reduce) dispatched back to back, never waited for.

  python benchmarks/collective_deadlock.py shard_map   # or pmap; 4 simulated CPU devices
  python benchmarks/collective_deadlock.py pmap --wait  # waiting for each call: finishes

On 2 cores both ways abort after ~60 s ("Termination timeout for `all reduce ...` ... Expected 4
threads to join the rendezvous, but only 2 of them arrived on time"); with --wait (each call
waited for; gan_jax/train.py waits for each one call late) it finishes (18.5 s for shard_map
here). Prints one line when it finishes.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import jax  # noqa: E402

jax.config.update('jax_num_cpu_devices', 4)

from configs import ring2d  # noqa: E402
from gan_jax import experiment, step  # noqa: E402


def main(api: str, wait: bool, calls: int = 2000):
  c = ring2d.get_config()
  c.mesh.platform, c.mesh.num_devices, c.mesh.api = 'cpu', 4, api
  exp = experiment.setup(c)
  dp = exp.dp
  fn, agree = step.make_train_steps(exp.spec, dp), dp.any_process()
  state = dp.replicate(exp.init_state)
  batch = dp.batch(jax.tree.map(lambda a: a[:, None], next(exp.iterator)))
  t0 = time.time()
  for _ in range(calls):
    state, metrics = fn(state, batch)
    reasons = agree([0, 1])
    if wait:
      jax.block_until_ready(metrics)
  jax.block_until_ready((state, reasons))
  print(f'collective_deadlock api={api} wait={wait} calls={calls} finished in {time.time() - t0:.1f} s')


if __name__ == '__main__':
  if len(sys.argv) < 2 or sys.argv[1] not in ('pmap', 'shard_map'):
    print('usage: python benchmarks/collective_deadlock.py pmap|shard_map [--wait]', file=sys.stderr)
    sys.exit(2)
  main(sys.argv[1], '--wait' in sys.argv[2:])
