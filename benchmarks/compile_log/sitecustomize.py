"""Every XLA compilation of every Python process, with the compilation cache's verdict: put this
directory on PYTHONPATH and set COMPILE_LOG to a file, and each process that starts (the pytest
workers, and every launch.py a test starts) appends one JSON line per compilation and per cache
log line to it. `benchmarks/compile_summary.py` reads the file.

    COMPILE_LOG=$PWD/compiles.jsonl PYTHONPATH=benchmarks/compile_log \\
    JAX_COMPILATION_CACHE_DIR=$TMPDIR/gan_jax_test_xla_cache JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0 \\
    JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES=0 python -m pytest -q tests

jax is imported here, before tests/conftest.py sets the cache variables, so they are set above.
A compilation's seconds (jax's backend_compile event) include reading a cache hit back; the log
line before it in the same process says which it was, and under which key.
"""
import json
import logging
import os

if os.environ.get('COMPILE_LOG'):
  import jax

  def _write(record):
    record.update(pid=os.getpid(), test=os.environ.get('PYTEST_CURRENT_TEST', '').split(' ')[0])
    with open(os.environ['COMPILE_LOG'], 'a') as f:
      f.write(json.dumps(record) + '\n')

  def _duration(event, seconds, fun_name=None, **_):
    if event.endswith('/backend_compile_duration'):
      _write(dict(ev='compile', fun=str(fun_name), s=round(seconds, 3)))

  class _CacheLog(logging.Handler):
    def emit(self, rec):
      msg = rec.getMessage()
      if 'cache' in msg.lower():
        _write(dict(ev='log', msg=msg[:300]))

  jax.monitoring.register_event_duration_secs_listener(_duration)
  for _name in ('jax._src.compiler', 'jax._src.compilation_cache'):
    _logger = logging.getLogger(_name)
    _logger.setLevel(logging.DEBUG)
    _logger.addHandler(_CacheLog())
