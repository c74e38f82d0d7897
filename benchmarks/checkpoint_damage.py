"""Every kind of damage a checkpoint step directory can suffer, as functions of its path: used by
benchmarks/fault_injection.py and tests/test_checkpoint_integrity.py."""
import glob
import os
import shutil


def _files(step_dir, sub='state'):
  return sorted(f for f in glob.glob(os.path.join(step_dir, sub, '**', '*'), recursive=True) if os.path.isfile(f))


def _biggest(step_dir):
  return max(_files(step_dir), key=os.path.getsize)


def truncate(step_dir):
  """A copy or write cut short: the largest array file loses its second half."""
  with open(_biggest(step_dir), 'r+b') as f:
    f.truncate(os.path.getsize(f.name) // 2)


def garbage(step_dir):
  """Overwritten blocks: the first 64 bytes of every state file."""
  for name in _files(step_dir):
    with open(name, 'r+b') as f:
      f.write(b'\xff' * 64)


def missing_files(step_dir):
  """Files lost: the largest array file and the clock item."""
  os.remove(_biggest(step_dir))
  shutil.rmtree(os.path.join(step_dir, 'clock'))


def empty_dir(step_dir):
  """A step directory with nothing in it (a failed copy, a full disk)."""
  shutil.rmtree(step_dir)
  os.mkdir(step_dir)


def bit_flip(step_dir):
  """One flipped bit inside an array's bytes, which orbax reads back without complaint."""
  with open(_biggest(step_dir), 'r+b') as f:
    f.seek(os.path.getsize(f.name) // 2)
    byte = f.read(1)[0]
    f.seek(-1, os.SEEK_CUR)
    f.write(bytes([byte ^ 0x04]))


def config_garbled(step_dir):
  """The saved config cut mid-write."""
  with open(os.path.join(step_dir, 'config', 'metadata'), 'w') as f:
    f.write('{"seed": 0, "da')


DAMAGE = [truncate, garbage, missing_files, empty_dir, bit_flip, config_garbled]
