#!/usr/bin/env python3
"""scikit-learn's randomized_svd on the matrix the Rust SVD benchmark wrote.

Called by common/benches/svd.rs (not meant to be run by hand):
    svd_reference.py MATRIX.f64 N RANK OVERSAMPLES N_ITER REPS
MATRIX.f64 is N*N raw little-endian float64 in column-major (Fortran) order. Runs
randomized_svd with power_iteration_normalizer='QR' (the same algorithm as Silo's) and with
scikit-learn's default normaliser ('auto', i.e. LU for n_iter > 2), best of REPS each, and
prints one JSON object: {"threads": ..., "runs": [{"normalizer", "best_seconds",
"singular_values"}]}. BLAS threads are capped with threadpoolctl at SILO_BENCH_THREADS
(default 2), to match faer's thread count on the Rust side.
"""

import json
import os
import sys
import time

import numpy as np
from sklearn.utils.extmath import randomized_svd
from threadpoolctl import threadpool_info, threadpool_limits


def main() -> None:
    path, n, rank, oversamples, n_iter, reps = sys.argv[1:7]
    n, rank, oversamples, n_iter, reps = map(int, (n, rank, oversamples, n_iter, reps))
    threads = int(os.environ.get("SILO_BENCH_THREADS", "2"))
    a = np.fromfile(path, dtype="<f8").reshape((n, n), order="F")
    a = np.ascontiguousarray(a)  # what a caller would normally hold
    runs = []
    with threadpool_limits(limits=threads):
        blas = [f"{p['internal_api']} {p['num_threads']}" for p in threadpool_info()]
        for normalizer in ("QR", "auto"):
            best = float("inf")
            s = None
            for _ in range(reps):
                start = time.perf_counter()
                _, s, _ = randomized_svd(
                    a,
                    n_components=rank,
                    n_oversamples=oversamples,
                    n_iter=n_iter,
                    power_iteration_normalizer=normalizer,
                    random_state=0,
                )
                best = min(best, time.perf_counter() - start)
            runs.append(
                {"normalizer": normalizer, "best_seconds": best, "singular_values": s.tolist()}
            )
    json.dump({"threads": threads, "blas": blas, "runs": runs}, sys.stdout)


if __name__ == "__main__":
    main()
