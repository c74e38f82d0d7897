"""The package's import graph: no cycle (counting the package __init__ an import runs first, and
imports inside functions), and evaluation never imports the training loop."""
import ast
import os

GAN_JAX = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'gan_jax')


def _modules():
  """{dotted name: path} of every module in gan_jax/ (a package by its __init__.py)."""
  out = {}
  for root, _, files in os.walk(GAN_JAX):
    for f in files:
      if f.endswith('.py'):
        rel = os.path.relpath(os.path.join(root, f), os.path.dirname(GAN_JAX))[:-3].split(os.sep)
        out['.'.join(rel[:-1] if rel[-1] == '__init__' else rel)] = os.path.join(root, f)
  return out


def _ancestors(name):
  parts = name.split('.')
  return {'.'.join(parts[:i]) for i in range(1, len(parts))}


def import_graph():
  """{module: set of gan_jax modules its import statements execute}. `from P import x` names the
  submodule P.x when there is one; importing P.x also runs P's __init__ unless the importer lives
  inside P (whose __init__ has then already run)."""
  modules, graph = _modules(), {}
  for name, path in modules.items():
    targets = set()
    for node in ast.walk(ast.parse(open(path, encoding='utf-8').read())):
      if isinstance(node, ast.Import):
        targets |= {a.name for a in node.names if a.name.split('.')[0] == 'gan_jax'}
      elif isinstance(node, ast.ImportFrom) and node.module and node.module.split('.')[0] == 'gan_jax':
        subs = {f'{node.module}.{a.name}' for a in node.names} & modules.keys()
        targets |= subs or {node.module}
    edges = set()
    for t in targets & modules.keys():
      edges.add(t)
      edges |= (_ancestors(t) - _ancestors(name) - {name}) & modules.keys()
    graph[name] = edges - {name, 'gan_jax'}
  return graph


def _find_cycle(graph):
  state, stack = {}, []

  def visit(n):
    state[n] = 'open'
    stack.append(n)
    for m in sorted(graph.get(n, ())):
      if state.get(m) == 'open':
        return stack[stack.index(m):] + [m]
      if m not in state and (cycle := visit(m)):
        return cycle
    state[n] = 'done'
    stack.pop()
    return None
  for n in sorted(graph):
    if n not in state and (cycle := visit(n)):
      return cycle
  return None


def test_no_import_cycle():
  graph = import_graph()
  assert 'gan_jax.eval.held_out' in graph['gan_jax.eval.game_metrics'], 'the graph misses from-imports of submodules'
  assert 'gan_jax.step' in graph['gan_jax.train'], 'the graph misses plain imports'
  assert 'gan_jax.games' in graph['gan_jax.step'], "the graph misses the package __init__ an import runs"
  cycle = _find_cycle(graph)
  assert cycle is None, 'import cycle: ' + ' -> '.join(cycle)


def test_evaluation_never_imports_training():
  graph = import_graph()
  reach = lambda n, seen: seen if n in seen else set.union(seen | {n}, *(reach(m, seen | {n}) for m in graph[n]))
  for name in graph:
    if name.startswith('gan_jax.eval'):
      assert 'gan_jax.train' not in reach(name, set()), f'{name} imports the training loop'


def test_cycle_finder_finds_one():
  assert _find_cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == ['a', 'b', 'c', 'a']
  assert _find_cycle({'a': {'b'}, 'b': set()}) is None
