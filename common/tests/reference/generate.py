#!/usr/bin/env python3
"""Writes the reference vectors that Silo's Rust privacy accountants are tested against.

Run from the repo root after `bash bench/setup-python.sh`:

    .venv/bin/python common/tests/reference/generate.py

It writes, next to this file, three deterministic JSON files (sorted keys, indented,
no timestamps; library versions under "meta"):

- rdp_opacus.json          Opacus RDP for the Poisson-subsampled Gaussian (the RDP reference)
- pld_dp_accounting.json   dp-accounting PLD, plus the exact one-shot analytic Gaussian ε
- rdp_dp_accounting.json   dp-accounting RDP (for information only)

Opacus is installed without torch; only its pure-numpy file
`opacus/accountants/analysis/rdp.py` is loaded, by path (never `import opacus`).
Nothing in Silo depends on Python at run time: these files are only references.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import importlib.util
import json
import math
import multiprocessing as mp
import platform
import resource
import signal
import sys
import time
import warnings
from pathlib import Path

import mpmath
import numpy as np
from absl import logging as absl_logging
from scipy import optimize, special

import dp_accounting as dpa
from dp_accounting import pld
from dp_accounting import rdp as dpa_rdp

HERE = Path(__file__).resolve().parent

# ---------------------------------------------------------------------------------------
# Grids

SAMPLE_RATES = [0.001, 0.01, 0.1, 0.5, 1.0]
NOISE_MULTIPLIERS = [0.5, 1.0, 2.0, 5.0, 10.0]
STEPS = [1, 10, 100, 1000, 10000]
DELTAS = [1e-5, 1e-6]
DPA_RDP_STEPS = [1, 100, 10000]
LAPLACE_SCALES = [0.5, 1.0, 2.0, 5.0, 10.0]

# Opacus's default orders (opacus.accountants.RDPAccountant.DEFAULT_ALPHAS).
OPACUS_ORDERS = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))

# Cases whose full per-order RDP vector is recorded (sample_rate, noise_multiplier, steps).
RDP_CURVE_CASES = [
    (0.01, 1.0, 10000),  # the DP-SGD benchmark case
    (0.001, 0.5, 1000),  # tiny q, small sigma
    (0.1, 2.0, 100),
    (0.5, 5.0, 10),
    (1.0, 1.0, 1),  # plain Gaussian: alpha / (2 sigma^2)
    (0.1, 0.5, 1),  # small sigma: stresses the fractional-order series
]

# Heterogeneous compositions. Event kinds:
#   poisson_gaussian: Poisson-subsampled Gaussian (sample_rate, noise_multiplier), count times
#   gaussian:         plain Gaussian, sensitivity 1 (noise_multiplier), count times
#   laplace:          Laplace, sensitivity 1 (scale b), count times -- PLD only
HETEROGENEOUS = [
    {
        "name": "sgd_then_larger_batch_then_release",
        "events": [
            {"kind": "poisson_gaussian", "sample_rate": 0.01, "noise_multiplier": 1.0, "count": 100},
            {"kind": "poisson_gaussian", "sample_rate": 0.1, "noise_multiplier": 2.0, "count": 50},
            {"kind": "gaussian", "noise_multiplier": 3.0, "count": 1},
        ],
    },
    {
        "name": "two_training_phases",
        "events": [
            {"kind": "poisson_gaussian", "sample_rate": 0.02, "noise_multiplier": 1.1, "count": 500},
            {"kind": "poisson_gaussian", "sample_rate": 0.05, "noise_multiplier": 1.5, "count": 200},
        ],
    },
    {
        "name": "statistics_then_long_training",
        "events": [
            {"kind": "gaussian", "noise_multiplier": 5.0, "count": 10},
            {"kind": "poisson_gaussian", "sample_rate": 0.001, "noise_multiplier": 0.7, "count": 2000},
        ],
    },
    {
        "name": "rounds_with_differing_noise",
        "events": [
            {"kind": "poisson_gaussian", "sample_rate": 0.5, "noise_multiplier": 5.0, "count": 20},
            {"kind": "poisson_gaussian", "sample_rate": 0.5, "noise_multiplier": 10.0, "count": 30},
            {"kind": "gaussian", "noise_multiplier": 2.0, "count": 2},
        ],
    },
]
HETEROGENEOUS_PLD_ONLY = [
    {
        "name": "laplace_counts_then_gaussian",
        "events": [
            {"kind": "laplace", "scale": 10.0, "count": 5},
            {"kind": "gaussian", "noise_multiplier": 4.0, "count": 3},
        ],
    },
    {
        "name": "laplace_counts_then_sgd",
        "events": [
            {"kind": "laplace", "scale": 2.0, "count": 1},
            {"kind": "poisson_gaussian", "sample_rate": 0.01, "noise_multiplier": 1.0, "count": 1000},
        ],
    },
]

# PLD cases not run: too slow or too big for the ~60 s per-case budget. dp-accounting
# folds K Gaussian releases into ONE Gaussian PLD with sigma/sqrt(K); at interval 1e-4
# that PLD's support grows like 1/(sigma/sqrt(K))^2. Measured on the 2-core, 24 GiB
# machine, one case alone: sigma/sqrt(K) = 0.05 took 19 s and 1.3 GB; 0.0316 took 34 s
# and 2.6 GB (kept); 0.02 took 61 s and
# 5.4 GB; 0.0158 took 94 s and 8.7 GB. Listing them here (rather than relying on the
# timeout) keeps the output the same from run to run. The timeout and memory limit in
# run_pld_jobs remain as a safety net; anything they catch is also listed under "skipped".
HEAVY_PLD = {
    ("gaussian", 2.0, 10000): "sigma/sqrt(K) = 0.02 (epsilon ~1460): one Gaussian PLD took 61 s and 5.4 GB "
                              "(over the 60 s budget)",
    ("gaussian", 0.5, 1000): "sigma/sqrt(K) = 0.0158 (epsilon ~2270): one Gaussian PLD took 94 s and 8.7 GB "
                             "(over the 60 s budget)",
    ("gaussian", 1.0, 10000): "sigma/sqrt(K) = 0.01 (epsilon ~5400): narrower than sigma/sqrt(K) = 0.0158, "
                              "which took 94 s and 8.7 GB (over the 60 s budget)",
    ("gaussian", 0.5, 10000): "sigma/sqrt(K) = 0.005 (epsilon ~20900): exceeded the 8 GiB address-space "
                              "limit after 25 s",
}

# ---------------------------------------------------------------------------------------
# Library loading and helpers


def load_opacus_rdp():
    """Loads opacus/accountants/analysis/rdp.py by path, without importing opacus (torch)."""
    path = Path(md.distribution("opacus").locate_file("opacus/accountants/analysis/rdp.py"))
    spec = importlib.util.spec_from_file_location("opacus_analysis_rdp", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def versions() -> dict:
    out = {"python": platform.python_version()}
    for pkg in ("dp-accounting", "opacus", "numpy", "scipy", "mpmath"):
        out[pkg] = md.version(pkg)
    return out


def num(x):
    """A JSON-safe float: non-finite values become null."""
    x = float(x)
    return x if math.isfinite(x) else None


def write_json(name: str, obj: dict) -> None:
    path = HERE / name
    text = json.dumps(obj, indent=1, sort_keys=True, allow_nan=False) + "\n"
    path.write_text(text)
    print(f"wrote {path} ({len(text)} bytes)", file=sys.stderr)


def common_meta() -> dict:
    return {
        "generator": "common/tests/reference/generate.py",
        "regenerate": "bash bench/setup-python.sh && .venv/bin/python common/tests/reference/generate.py",
        "versions": versions(),
        "neighboring_relation": "add_or_remove_one",
        "sensitivity": 1.0,
    }


# ---------------------------------------------------------------------------------------
# Opacus RDP


def opacus_rdp_vector(op, events) -> np.ndarray:
    """Sum of Opacus per-order RDP over events (as Opacus's RDPAccountant composes)."""
    total = np.zeros(len(OPACUS_ORDERS))
    for ev in events:
        if ev["kind"] == "poisson_gaussian":
            q, s = ev["sample_rate"], ev["noise_multiplier"]
        elif ev["kind"] == "gaussian":
            q, s = 1.0, ev["noise_multiplier"]
        else:
            raise ValueError(f"Opacus has no RDP for {ev['kind']}")
        total = total + np.asarray(
            op.compute_rdp(q=q, noise_multiplier=s, steps=ev["count"], orders=OPACUS_ORDERS)
        )
    return total


def opacus_eps(op, rdp_vec, delta):
    with warnings.catch_warnings():
        # "Optimal order is the largest alpha": expected for some grid corners.
        warnings.simplefilter("ignore")
        eps, order = op.get_privacy_spent(orders=OPACUS_ORDERS, rdp=rdp_vec, delta=delta)
    return num(eps), num(order)


def build_rdp_opacus() -> dict:
    op = load_opacus_rdp()
    cases = []
    for q in SAMPLE_RATES:
        for s in NOISE_MULTIPLIERS:
            for t in STEPS:
                rdp_vec = np.asarray(
                    op.compute_rdp(q=q, noise_multiplier=s, steps=t, orders=OPACUS_ORDERS)
                )
                for d in DELTAS:
                    eps, order = opacus_eps(op, rdp_vec, d)
                    cases.append({
                        "sample_rate": q, "noise_multiplier": s, "steps": t, "delta": d,
                        "epsilon": eps, "best_order": order,
                    })
    curves = []
    for q, s, t in RDP_CURVE_CASES:
        rdp_vec = op.compute_rdp(q=q, noise_multiplier=s, steps=t, orders=OPACUS_ORDERS)
        curves.append({
            "sample_rate": q, "noise_multiplier": s, "steps": t,
            "rdp": [num(v) for v in rdp_vec],
        })
    het = []
    for h in HETEROGENEOUS:
        rdp_vec = opacus_rdp_vector(op, h["events"])
        for d in DELTAS:
            eps, order = opacus_eps(op, rdp_vec, d)
            het.append({"name": h["name"], "events": h["events"], "delta": d,
                        "epsilon": eps, "best_order": order})
    meta = common_meta()
    meta.update({
        "library": "opacus",
        "functions": "opacus.accountants.analysis.rdp.compute_rdp + get_privacy_spent "
                     "(file loaded by path; torch not installed)",
        "conversion": "Balle et al. 2020 (arXiv:1905.09982) Thm 21, as in Opacus get_privacy_spent",
        "note": "rdp values are totals over 'steps' (per-step RDP x steps); "
                "heterogeneous = sum of per-event RDP vectors, then get_privacy_spent; "
                "non-finite numbers are written as null",
    })
    return {"meta": meta, "orders": [float(a) for a in OPACUS_ORDERS], "cases": cases,
            "rdp_curves": curves, "heterogeneous": het}


# ---------------------------------------------------------------------------------------
# dp-accounting RDP (information only)


def dpa_event(ev):
    if ev["kind"] == "poisson_gaussian":
        inner = dpa.PoissonSampledDpEvent(ev["sample_rate"], dpa.GaussianDpEvent(ev["noise_multiplier"]))
    elif ev["kind"] == "gaussian":
        inner = dpa.GaussianDpEvent(ev["noise_multiplier"])
    elif ev["kind"] == "laplace":
        inner = dpa.LaplaceDpEvent(ev["scale"])
    else:
        raise ValueError(ev["kind"])
    return dpa.SelfComposedDpEvent(inner, ev["count"])


def dpa_composed(events):
    return dpa.ComposedDpEvent([dpa_event(ev) for ev in events])


def build_rdp_dp_accounting() -> dict:
    # dp-accounting logs a warning for each fractional order whose series does not
    # converge (it then drops that order); the meta note records this instead.
    absl_logging.set_verbosity(absl_logging.ERROR)
    cases = []
    for q in SAMPLE_RATES:
        for s in NOISE_MULTIPLIERS:
            for t in DPA_RDP_STEPS:
                acc = dpa_rdp.RdpAccountant()
                acc.compose(dpa.SelfComposedDpEvent(
                    dpa.PoissonSampledDpEvent(q, dpa.GaussianDpEvent(s)), t))
                for d in DELTAS:
                    eps, order = acc.get_epsilon_and_optimal_order(d)
                    cases.append({
                        "sample_rate": q, "noise_multiplier": s, "steps": t, "delta": d,
                        "epsilon": num(eps), "best_order": num(order),
                    })
    het = []
    for h in HETEROGENEOUS:
        acc = dpa_rdp.RdpAccountant()
        acc.compose(dpa_composed(h["events"]))
        for d in DELTAS:
            eps, order = acc.get_epsilon_and_optimal_order(d)
            het.append({"name": h["name"], "events": h["events"], "delta": d,
                        "epsilon": num(eps), "best_order": num(order)})
    meta = common_meta()
    meta.update({
        "library": "dp-accounting",
        "functions": "dp_accounting.rdp.RdpAccountant() (default orders) compose + "
                     "get_epsilon_and_optimal_order",
        "orders": [float(a) for a in dpa_rdp.rdp_privacy_accountant.DEFAULT_RDP_ORDERS],
        "note": "information only: Silo's RDP reference is rdp_opacus.json "
                "(dp-accounting's fractional-order RDP can overestimate); for some q >= 0.1 "
                "cases dp-accounting drops small fractional orders whose series does not "
                "converge in 1000 terms",
    })
    return {"meta": meta, "cases": cases, "heterogeneous": het}


# ---------------------------------------------------------------------------------------
# dp-accounting PLD, each case in a child process with a time and memory budget


def _pld_child(conn, events, mem_limit_bytes, cpu_seconds):
    try:
        if mem_limit_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (mem_limit_bytes, mem_limit_bytes))
        # CPU-time budget: SIGXCPU ends this process past it. CPU time, unlike wall time,
        # barely moves when other work shares the machine.
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, resource.RLIM_INFINITY))
        acc = pld.PLDAccountant()
        acc.compose(dpa_composed(events))
        conn.send(("ok", {repr(d): acc.get_epsilon(d) for d in DELTAS}))
    except MemoryError:
        conn.send(("memory", None))
    except BaseException as e:  # noqa: BLE001 -- reported to the parent
        conn.send(("error", f"{type(e).__name__}: {e}"))
    finally:
        conn.close()


def run_pld_jobs(jobs, timeout, mem_gib, parallel):
    """Runs each PLD case in its own child with a CPU-time and address-space limit.

    jobs: list of (key, events). Returns {key: ("ok", {delta_repr: eps}) | (status, detail)}.
    A wall-clock limit of 10x the CPU budget guards against a child that stalls.
    """
    ctx = mp.get_context("fork")
    pending = list(jobs)
    running = {}  # key -> (proc, conn, start)
    results = {}
    mem = int(mem_gib * (1 << 30)) if mem_gib else 0
    cpu = max(1, math.ceil(timeout))
    wall = 10 * timeout
    while pending or running:
        while pending and len(running) < parallel:
            key, events = pending.pop(0)
            parent, child = ctx.Pipe(duplex=False)
            p = ctx.Process(target=_pld_child, args=(child, events, mem, cpu), daemon=True)
            p.start()
            child.close()
            running[key] = (p, parent, time.monotonic())
        time.sleep(0.02)
        for key in list(running):
            p, conn, start = running[key]
            elapsed = time.monotonic() - start
            if conn.poll():
                try:
                    results[key] = conn.recv()
                except EOFError:  # the child died without answering
                    p.join()
                    results[key] = (("timeout", None) if p.exitcode == -signal.SIGXCPU
                                    else ("error", f"child exited with code {p.exitcode}"))
                p.join()
                del running[key]
            elif not p.is_alive():
                p.join()
                results[key] = (("timeout", None) if p.exitcode == -signal.SIGXCPU
                                else ("error", f"child exited with code {p.exitcode}"))
                del running[key]
            elif elapsed > wall:
                p.kill()  # this child only, by its own handle
                p.join()
                results[key] = ("error", f"no answer after {wall:g} s of wall time")
                del running[key]
            else:
                continue
            print(f"  pld {key}: {results[key][0]} ({elapsed:.1f} s wall)", file=sys.stderr)
    return results


def analytic_gaussian_delta(eps, sigma):
    """delta(eps) of one Gaussian release, sensitivity 1 (Balle & Wang 2018, arXiv:1805.06530, Thm 8)."""
    a = 1.0 / (2.0 * sigma)
    return special.ndtr(a - eps * sigma) - math.exp(eps + special.log_ndtr(-a - eps * sigma))


def analytic_gaussian_epsilon(sigma, delta):
    hi = 1.0
    while analytic_gaussian_delta(hi, sigma) > delta:
        hi *= 2.0
    if analytic_gaussian_delta(0.0, sigma) <= delta:
        return 0.0
    eps = optimize.brentq(lambda e: analytic_gaussian_delta(e, sigma) - delta, 0.0, hi,
                          xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500)
    # Cross-check with 50-digit arithmetic.
    mpmath.mp.dps = 50
    s, dl = mpmath.mpf(sigma), mpmath.mpf(delta)
    a = 1 / (2 * s)
    f = lambda e: mpmath.ncdf(a - e * s) - mpmath.exp(e) * mpmath.ncdf(-a - e * s) - dl
    exact = mpmath.findroot(f, mpmath.mpf(eps))
    assert abs(float(exact) - eps) <= 1e-12 * max(1.0, eps), (sigma, delta, eps, exact)
    return eps


def laplace_single_epsilon(b, delta):
    """Exact epsilon of one Laplace release, sensitivity 1: delta(eps) = 1 - exp((eps - 1/b)/2)."""
    return max(0.0, 1.0 / b + 2.0 * math.log1p(-delta))


def build_pld(timeout, mem_gib, parallel) -> dict:
    jobs = []
    for q in SAMPLE_RATES:
        for s in NOISE_MULTIPLIERS:
            for t in STEPS:
                jobs.append((("poisson_gaussian", q, s, t), [
                    {"kind": "poisson_gaussian", "sample_rate": q, "noise_multiplier": s, "count": t}]))
    for s in NOISE_MULTIPLIERS:
        for k in STEPS:
            jobs.append((("gaussian", s, k), [{"kind": "gaussian", "noise_multiplier": s, "count": k}]))
    for b in LAPLACE_SCALES:
        for k in STEPS:
            jobs.append((("laplace", b, k), [{"kind": "laplace", "scale": b, "count": k}]))
    het_defs = HETEROGENEOUS + HETEROGENEOUS_PLD_ONLY
    for h in het_defs:
        jobs.append((("heterogeneous", h["name"]), h["events"]))
    # Longest first, so the slow corners overlap with the quick cases.
    jobs.sort(key=lambda j: -sum(e["count"] / e.get("noise_multiplier", e.get("scale", 1.0))
                                 for e in j[1]))

    results = {key: ("heavy", HEAVY_PLD[key]) for key, _ in jobs if key in HEAVY_PLD}
    jobs = [j for j in jobs if j[0] not in HEAVY_PLD]
    results.update(run_pld_jobs(jobs, timeout, mem_gib, parallel))

    def eps_or_skip(key, fields):
        status, val = results[key]
        if status == "ok":
            return [dict(fields, delta=d, epsilon=num(val[repr(d)])) for d in DELTAS]
        reason = {"timeout": f"needed more than {timeout:g} s of CPU time",
                  "memory": f"needed more than {mem_gib:g} GiB"}.get(status, val)
        skipped.append(dict(fields, reason=reason))
        return []

    skipped = []
    subsampled, gaussian, laplace, het = [], [], [], []
    for q in SAMPLE_RATES:
        for s in NOISE_MULTIPLIERS:
            for t in STEPS:
                subsampled += eps_or_skip(("poisson_gaussian", q, s, t), {
                    "kind": "poisson_gaussian", "sample_rate": q, "noise_multiplier": s, "steps": t})
    for s in NOISE_MULTIPLIERS:
        for k in STEPS:
            rows = eps_or_skip(("gaussian", s, k), {"kind": "gaussian", "noise_multiplier": s, "count": k})
            for r in rows:
                # K-fold Gaussian composition is exactly one Gaussian with sigma / sqrt(K).
                r["analytic_epsilon"] = analytic_gaussian_epsilon(s / math.sqrt(k), r["delta"])
            gaussian += rows
    for b in LAPLACE_SCALES:
        for k in STEPS:
            rows = eps_or_skip(("laplace", b, k), {"kind": "laplace", "scale": b, "count": k})
            for r in rows:
                r["analytic_epsilon"] = laplace_single_epsilon(b, r["delta"]) if k == 1 else None
            laplace += rows
    for h in het_defs:
        het += eps_or_skip(("heterogeneous", h["name"]), {"name": h["name"], "events": h["events"]})
    for rows in (subsampled, gaussian, laplace, het):
        for r in rows:
            r.pop("kind", None)
    for r in skipped:
        r.setdefault("kind", "heterogeneous")

    analytic = [{"noise_multiplier": s, "delta": d, "epsilon": analytic_gaussian_epsilon(s, d)}
                for s in NOISE_MULTIPLIERS for d in DELTAS]

    # Sanity: PLD (pessimistic discretisation) bounds the closed form from above, up to
    # the root-finding precision of get_epsilon (seen: 1e-11 relative below at epsilon 191).
    for r in gaussian + [r for r in laplace if r["analytic_epsilon"] is not None]:
        assert r["epsilon"] >= r["analytic_epsilon"] * (1 - 1e-9) - 1e-12, r

    meta = common_meta()
    meta.update({
        "library": "dp-accounting",
        "functions": "dp_accounting.pld.PLDAccountant() (default settings) compose + get_epsilon(delta)",
        "value_discretization_interval": pld.PLDAccountant()._value_discretization_interval,
        "pessimistic_estimate": True,
        "events": "subsampled_gaussian: SelfComposedDpEvent(PoissonSampledDpEvent(q, GaussianDpEvent(sigma)), T); "
                  "gaussian: SelfComposedDpEvent(GaussianDpEvent(sigma), K) (dp-accounting folds this into one "
                  "Gaussian with sigma/sqrt(K)); laplace: SelfComposedDpEvent(LaplaceDpEvent(b), K); "
                  "heterogeneous: ComposedDpEvent of SelfComposedDpEvents in the listed order",
        "analytic_gaussian": "exact epsilon of one Gaussian release, sensitivity 1 (Balle & Wang 2018, "
                             "arXiv:1805.06530): root of Phi(1/(2s) - e s) - exp(e) Phi(-1/(2s) - e s) = delta, "
                             "scipy brentq (xtol 1e-15), checked against mpmath at 50 digits",
        "analytic_epsilon": "gaussian rows: analytic Gaussian epsilon at sigma/sqrt(count); laplace rows: "
                            "1/b + 2 ln(1 - delta) for count 1, else null",
        "budget_per_case": {"cpu_seconds": timeout, "memory_gib": mem_gib},
    })
    return {"meta": meta, "subsampled_gaussian": subsampled, "gaussian": gaussian, "laplace": laplace,
            "heterogeneous": het, "analytic_gaussian": analytic, "skipped": skipped}


# ---------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timeout", type=float, default=60.0,
                    help="CPU seconds per PLD case (default 60)")
    ap.add_argument("--mem-gib", type=float, default=8.0, help="address-space limit per PLD case (default 8)")
    # One at a time by default: two large PLDs side by side slow each other down (memory
    # traffic; 34 s alone became > 60 s of wall time), and even CPU time grows some.
    ap.add_argument("--parallel", type=int, default=1,
                    help="PLD cases run at once (default 1, so each case is timed alone)")
    ap.add_argument("--only", choices=["opacus", "dpa-rdp", "pld"], action="append",
                    help="write only these files (repeatable; default all)")
    args = ap.parse_args()
    only = set(args.only or ["opacus", "dpa-rdp", "pld"])
    if "opacus" in only:
        write_json("rdp_opacus.json", build_rdp_opacus())
    if "dpa-rdp" in only:
        write_json("rdp_dp_accounting.json", build_rdp_dp_accounting())
    if "pld" in only:
        write_json("pld_dp_accounting.json", build_pld(args.timeout, args.mem_gib, args.parallel))


if __name__ == "__main__":
    main()
