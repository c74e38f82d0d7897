"""What a test run compiled, from benchmarks/compile_log's file: compilations (cache misses) and
cache hits by program, the keys compiled more than once, and the processes that read nothing from
the cache.

    python benchmarks/compile_summary.py compiles.jsonl
"""
import collections
import json
import re
import sys

_VERDICT = re.compile(r"(MISS|hit) for '[^']*' with key '([^']*)'")


def compilations(path):
  """One dict per compilation: pid, test, fun, s, and kind ('MISS' or 'hit') and key."""
  last, out = {}, []
  for line in open(path):
    r = json.loads(line)
    if r['ev'] == 'log':
      m = _VERDICT.search(r['msg'])
      if m:
        last[r['pid']] = m.groups()
    elif r['ev'] == 'compile':
      kind, key = last.pop(r['pid'], ('uncached', None))
      out.append(dict(r, kind=kind, key=key))
  return out


def main(path):
  rows = compilations(path)
  misses = [r for r in rows if r['kind'] != 'hit']
  hits = [r for r in rows if r['kind'] == 'hit']
  print(f'{len(misses)} compilations, {sum(r["s"] for r in misses):.0f} s; '
        f'{len(hits)} cache hits, {sum(r["s"] for r in hits):.0f} s')
  by_fun = collections.defaultdict(lambda: [0, 0.0])
  for r in misses:
    by_fun[r['fun']][0] += 1
    by_fun[r['fun']][1] += r['s']
  for fun, (n, s) in sorted(by_fun.items(), key=lambda kv: -kv[1][1])[:15]:
    print(f'  {s:7.1f} s {n:5d}  {fun}')
  by_key = collections.defaultdict(list)
  for r in misses:
    by_key[r['key']].append(r)
  again = [v[1:] for k, v in by_key.items() if k and len(v) > 1]
  print(f'{len(again)} keys compiled more than once: {sum(r["s"] for v in again for r in v):.0f} s again')
  per_pid = collections.defaultdict(list)
  for r in rows:
    per_pid[r['pid']].append(r)
  cold = {p: v for p, v in per_pid.items() if len(v) > 5 and all(r['kind'] != 'hit' for r in v)}
  print(f'{len(cold)} processes with no cache hit among more than 5 compilations: '
        f'{sum(r["s"] for v in cold.values() for r in v):.0f} s')
  for p, v in cold.items():
    print(f'  {sum(r["s"] for r in v):6.1f} s {len(v):4d}  {v[0]["test"]}')


if __name__ == '__main__':
  main(sys.argv[1])
