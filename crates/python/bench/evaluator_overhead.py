"""Bench: a Python callable evaluator's cost per scored item against the same metric in Rust.

    python crates/python/bench/evaluator_overhead.py [N]

Both score N items in batches of 40 (as a run scores a minibatch) through the engine's
evaluator interface; the figures are items per second and microseconds per item.
"""

import json
import sys

from metaprompt import Evaluator, _native

N = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
items = [
    {"response": "spam" if i % 3 else "ham", "expected_response": "spam" if i % 2 else "ham"}
    for i in range(N)
]
text = json.dumps(items)


def exact(outputs, rows):
    return [float(o.strip().lower() == r["expected_response"].strip().lower()) for o, r in zip(outputs, rows)]


def run(name, evaluator):
    best = None
    for _ in range(3):
        results, secs = _native.score(evaluator, text, 40)
        best = secs if best is None else min(best, secs)
    mean = sum(s for s, _ in results) / len(results)
    print(f"{name:<28} {N / best:>12,.0f} items/s {best / N * 1e6:>8.2f} µs/item  (mean score {mean:.4f})")
    return mean


a = run("rust exact_match", Evaluator("exact_match", normalize=True))
b = run("python callable exact match", exact)
assert abs(a - b) < 1e-9, "the two metrics must agree"
