"""`python launch.py ...` as a real child process that skips the ~2 s of imports each start costs.

The tests start about eighty launch.py processes (preemption, two processes on loopback, buckets,
resumes), each importing jax, flax, orbax, tfds and grain before its few steps. Here each is forked
from one server process per test worker that has imported them once (multiprocessing's
forkserver, nothing else started: no JAX backend, one thread), then runs launch.py's entry point
with its own argv, environment, working directory and output files: its own PID for signals, its
own exit code, its own JAX backend and devices. The test of the typed command itself
(test_launch.py's test_headline_command_offline_without_data_fails_fast) still starts
`python launch.py`.

`run` and `Popen` take the arguments the tests give subprocess's, for
`[sys.executable, 'launch.py', ...]`; output goes to files (PIPE: a temporary one, read back).
"""
import atexit
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import traceback

PIPE, STDOUT = subprocess.PIPE, subprocess.STDOUT
# What launch.py imports before and during a run; importing them here is what the fork saves.
_PRELOAD = ['tests.launcher', 'launch', 'gan_jax.train', 'gan_jax.eval.evaluate', 'gan_jax.checkpoint',
            'gan_jax.data.tfds_source', 'gan_jax.eval.figures', 'matplotlib.pyplot', 'tensorboardX',
            'tensorflow_datasets', 'grain', 'gcsfs']
_context = multiprocessing.get_context('forkserver')
_context.set_forkserver_preload(_PRELOAD)
_started = []


def _child(argv, env, cwd, out_path, err_path):
  """In the forked process: what `python launch.py <argv>` does after its imports."""
  out = os.open(out_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
  err = out if err_path == out_path else os.open(err_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
  sys.stdout.flush()
  sys.stderr.flush()
  os.dup2(out, 1)
  os.dup2(err, 2)
  os.environ.clear()
  os.environ.update(env)
  os.chdir(cwd)
  sys.argv = list(argv)
  import launch
  from absl import app
  code = 0
  try:
    app.run(launch.main, argv=sys.argv, flags_parser=launch.parse_flags)
  except SystemExit as e:
    code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    if not isinstance(e.code, (int, type(None))):
      print(e.code, file=sys.stderr)
  except BaseException:  # as the interpreter does with an uncaught exception
    traceback.print_exc()
    code = 1
  finally:
    # what the interpreter does at exit, which a forked multiprocessing child skips
    threading._shutdown()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
  os._exit(code)


class Popen:
  """The part of subprocess.Popen the tests use, for a launch.py forked from the server."""

  def __init__(self, cmd, cwd=None, env=None, text=None, stdout=PIPE, stderr=PIPE):
    assert list(cmd[:2]) == [sys.executable, 'launch.py'], cmd
    self._pipes = {}
    paths = []
    for name, stream in (('stdout', stdout), ('stderr', stderr)):
      if stream is STDOUT:
        paths.append(paths[0])
      elif stream is PIPE:
        fd, path = tempfile.mkstemp(prefix=f'launch_{name}_')
        os.close(fd)
        self._pipes[name] = path
        paths.append(path)
      else:  # an open file: the child appends to it
        paths.append(stream.name)
    argv = [str(a) for a in cmd[1:]]
    self._process = _context.Process(target=_child, args=(argv, dict(os.environ if env is None else env),
                                                          str(cwd or os.getcwd()), *paths))
    self._process.start()
    _started.append(self)
    self.pid = self._process.pid
    self.returncode = None

  def poll(self):
    if self._process.exitcode is not None:
      self.returncode = self._process.exitcode
    return self.returncode

  def wait(self, timeout=None):
    self._process.join(timeout)
    if self.poll() is None:
      raise subprocess.TimeoutExpired(['launch.py'], timeout)
    return self.returncode

  def communicate(self, timeout=None):
    self.wait(timeout)
    return tuple(self._read(name) for name in ('stdout', 'stderr'))

  def _read(self, name):
    path = self._pipes.pop(name, None)
    if path is None:
      return None
    with open(path) as f:
      text = f.read()
    os.unlink(path)
    return text

  def send_signal(self, sig):
    if self.poll() is None:
      os.kill(self.pid, sig)

  def kill(self):
    if self.poll() is None:
      self._process.kill()


def run(cmd, cwd=None, env=None, capture_output=True, text=None, timeout=None):
  """subprocess.run for launch.py, its output captured: a CompletedProcess with its exit code,
  stdout and stderr."""
  assert capture_output, 'the output of a forked launch.py is always captured'
  proc = Popen(cmd, cwd=cwd, env=env)
  try:
    out, err = proc.communicate(timeout=timeout)
  except subprocess.TimeoutExpired:
    proc.kill()
    proc.wait()
    raise
  return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@atexit.register
def _kill_leftovers():
  """Before multiprocessing joins its children at exit: a launch a failed test left running."""
  for proc in _started:
    if proc.poll() is None:
      proc.kill()
      proc.wait()
