#!/usr/bin/env python3
"""Python side of Silo's accountant benchmark.

Times the reference accountants on one DP-SGD case (Poisson-subsampled Gaussian,
`steps` compositions) and prints ONE JSON document to stdout:

    {"dp_accounting_rdp": {"epsilon": .., "seconds": ..},
     "dp_accounting_pld": {"epsilon": .., "seconds": ..},
     "opacus_rdp":        {"epsilon": .., "seconds": ..},
     "case": {"sample_rate": .., "noise_multiplier": .., "steps": .., "delta": ..},
     "repetitions": 3,
     "versions": {"python": .., "dp-accounting": .., "opacus": .., "numpy": .., "scipy": ..}}

"seconds" is the best of --repetitions runs; each run starts from a fresh accountant
and includes the compose step and the epsilon query. Library defaults throughout
(dp-accounting RDP orders, PLD value_discretization_interval 1e-4, Opacus's default
orders). Opacus is not imported (it would need torch): its pure-numpy file
opacus/accountants/analysis/rdp.py is loaded by path.

Run with the venv from bench/setup-python.sh:

    .venv/bin/python bench/accountant_reference.py [--sample-rate 0.01 --noise-multiplier 1.0
                                                    --steps 10000 --delta 1e-5]
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import importlib.util
import json
import platform
import sys
import time
import warnings
from pathlib import Path

# Opacus's default orders (opacus.accountants.RDPAccountant.DEFAULT_ALPHAS).
OPACUS_ORDERS = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))


def load_opacus_rdp():
    path = Path(md.distribution("opacus").locate_file("opacus/accountants/analysis/rdp.py"))
    spec = importlib.util.spec_from_file_location("opacus_analysis_rdp", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def best_of(reps, fn):
    best, value = float("inf"), None
    for _ in range(reps):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return {"epsilon": float(value), "seconds": best}


def main() -> int:
    ap = argparse.ArgumentParser(description="Time the Python reference privacy accountants.")
    ap.add_argument("--sample-rate", type=float, default=0.01)
    ap.add_argument("--noise-multiplier", type=float, default=1.0)
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--delta", type=float, default=1e-5)
    ap.add_argument("--repetitions", type=int, default=3)
    args = ap.parse_args()
    if not (0 < args.sample_rate <= 1 and args.noise_multiplier > 0 and args.steps >= 1
            and 0 < args.delta < 1 and args.repetitions >= 1):
        ap.error("need 0 < sample-rate <= 1, noise-multiplier > 0, steps >= 1, "
                 "0 < delta < 1, repetitions >= 1")

    from absl import logging as absl_logging
    import dp_accounting as dpa
    from dp_accounting import pld, rdp

    absl_logging.set_verbosity(absl_logging.ERROR)  # keep stdout/stderr quiet
    opacus_rdp = load_opacus_rdp()
    q, sigma, steps, delta = args.sample_rate, args.noise_multiplier, args.steps, args.delta

    def event():
        return dpa.SelfComposedDpEvent(
            dpa.PoissonSampledDpEvent(q, dpa.GaussianDpEvent(sigma)), steps)

    def dpa_rdp():
        acc = rdp.RdpAccountant()
        acc.compose(event())
        return acc.get_epsilon(delta)

    def dpa_pld():
        acc = pld.PLDAccountant()
        acc.compose(event())
        return acc.get_epsilon(delta)

    def opacus():
        curve = opacus_rdp.compute_rdp(q=q, noise_multiplier=sigma, steps=steps,
                                       orders=OPACUS_ORDERS)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            eps, _ = opacus_rdp.get_privacy_spent(orders=OPACUS_ORDERS, rdp=curve, delta=delta)
        return eps

    reps = args.repetitions
    out = {
        "dp_accounting_rdp": best_of(reps, dpa_rdp),
        "dp_accounting_pld": best_of(reps, dpa_pld),
        "opacus_rdp": best_of(reps, opacus),
        "case": {"sample_rate": q, "noise_multiplier": sigma, "steps": steps, "delta": delta},
        "repetitions": reps,
        "versions": {"python": platform.python_version(),
                     **{p: md.version(p) for p in ("dp-accounting", "opacus", "numpy", "scipy")}},
    }
    json.dump(out, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
