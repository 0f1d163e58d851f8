#!/usr/bin/env python3
"""The crate's module map, checked (ARCHITECTURE.md): every `crate::` path in a module of `src/` is an
arrow to another module; wings may only point to the wings below them, and no arrows may form a circle.
Prints the offending arrows and exits 1; prints a summary and exits 0 when the house is in order."""
import os, re, sys
from collections import defaultdict

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'src')
# Each wing and the wings it may import (itself included).
ALLOWED = {
    'util': {'util'},
    'pipeline': {'util', 'pipeline'},
    'media': {'util', 'pipeline', 'media'},
    'synth': {'util', 'pipeline', 'synth'},
    'device': {'util', 'pipeline', 'media', 'synth', 'device'},
    'train': {'util', 'pipeline', 'media', 'train'},
    'tools': {'util', 'pipeline', 'media', 'synth', 'device', 'train', 'tools'},
}

def module_of(path):
    rel = os.path.relpath(path, ROOT)[:-3].split(os.sep)
    if rel[-1] == 'mod':
        rel = rel[:-1]
    return rel

modules = {}
for dirpath, _, files in os.walk(ROOT):
    if os.sep + 'bin' in dirpath[len(ROOT):] or dirpath[len(ROOT):].startswith(os.sep + 'bin'):
        continue
    for f in files:
        if f.endswith('.rs') and f != 'lib.rs':
            p = os.path.join(dirpath, f)
            modules['::'.join(module_of(p))] = p

def resolve(path_parts):
    """The longest known module that `path_parts` starts with."""
    for n in range(len(path_parts), 0, -1):
        name = '::'.join(path_parts[:n])
        if name in modules:
            return name
    return None

edges = defaultdict(set)
for name, p in modules.items():
    text = open(p).read()
    # Unit tests may reach anywhere; only the modules' own code counts.
    text = re.split(r'#\[cfg\(test\)\]\s*mod tests', text)[0]
    me = name.split('::')
    for m in re.finditer(r'\b(crate|super)((?:::\w+)+)', text):
        parts = m.group(2).split('::')[1:]
        if m.group(1) == 'super':
            base = me[:-1] if not p.endswith('mod.rs') else me[:-1]
            parts = base + parts if not p.endswith('mod.rs') else me[:-1] + parts
        target = resolve(parts)
        if target and target != name and not name.startswith(target + '::'):
            edges[name].add(target)

bad = []
for a, targets in edges.items():
    for b in targets:
        wa, wb = a.split('::')[0], b.split('::')[0]
        if wb not in ALLOWED.get(wa, set()):
            bad.append(f'{a} -> {b}: the {wa} wing may not import the {wb} wing')

# Circles: strongly connected components of more than one module.
index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]
def strong(v):
    index[v] = low[v] = counter[0]; counter[0] += 1
    stack.append(v); on.add(v)
    for w in edges.get(v, ()):
        if w not in index:
            strong(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            comps.append(sorted(comp))
sys.setrecursionlimit(10000)
for v in list(modules):
    if v not in index:
        strong(v)
for c in comps:
    bad.append('import circle: ' + ' <-> '.join(c))

if bad:
    print('\n'.join(sorted(bad)))
    sys.exit(1)
print(f'{len(modules)} modules, {sum(len(t) for t in edges.values())} imports: every arrow points down, no circle')
