#!/usr/bin/env python3
"""scikit-learn's randomized_svd, served to the Rust SVD benchmark one run at a time.

Started by common/benches/svd.rs (not meant to be run by hand):
    svd_reference.py MATRIX.f64 N RANK OVERSAMPLES N_ITER
MATRIX.f64 is N*N raw little-endian float64 in column-major (Fortran) order; it is loaded
once and made C-contiguous (what a caller would normally hold).

Protocol (one JSON object per line on stdout, so the benchmark can interleave Silo's and
scikit-learn's repetitions and both see the same machine load):
- after loading: {"sklearn": version, "numpy": version, "scipy": version};
- for each request line "run THREADS SEED NORMALIZER" on stdin: one call of
  randomized_svd(M, RANK, n_oversamples=OVERSAMPLES, n_iter=N_ITER,
  power_iteration_normalizer=NORMALIZER, random_state=SEED) with the BLAS and OpenMP pools
  capped at THREADS by threadpoolctl, answered with {"seconds", "singular_values",
  "blas"} (seconds: the call alone, measured with perf_counter);
- EOF on stdin ends the process.
"""

import json
import sys
import time

import numpy as np
import scipy
import sklearn
from sklearn.utils.extmath import randomized_svd
from threadpoolctl import threadpool_info, threadpool_limits


def reply(obj) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main() -> None:
    path, n, rank, oversamples, n_iter = sys.argv[1:6]
    n, rank, oversamples, n_iter = map(int, (n, rank, oversamples, n_iter))
    a = np.fromfile(path, dtype="<f8").reshape((n, n), order="F")
    a = np.ascontiguousarray(a)
    reply({"sklearn": sklearn.__version__, "numpy": np.__version__, "scipy": scipy.__version__})
    for line in sys.stdin:
        command, threads, seed, normalizer = line.split()
        assert command == "run", line
        with threadpool_limits(limits=int(threads)):
            blas = [f"{p['internal_api']} {p['num_threads']}" for p in threadpool_info()]
            start = time.perf_counter()
            _, s, _ = randomized_svd(
                a,
                n_components=rank,
                n_oversamples=oversamples,
                n_iter=n_iter,
                power_iteration_normalizer=normalizer,
                random_state=int(seed),
            )
            seconds = time.perf_counter() - start
        reply({"seconds": seconds, "singular_values": s.tolist(), "blas": blas})


if __name__ == "__main__":
    main()
