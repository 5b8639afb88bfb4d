//! The coordinator's `pmi_svd` pipeline from released counts to embeddings: sum the
//! sites' packed noisy co-occurrence counts, drop cells that are small or within the
//! noise, take marginals as row sums, SPPMI, truncated SVD, U·Σ^½ with unit rows.
//!
//! The same function runs on exact pooled counts (noise std 0) for the centralised,
//! non-private reference that simulations compare against.

use faer::Mat;
use serde::Serialize;

use super::{Embedding, PmiError, SppmiParams, embed, sppmi};
use crate::ehr::cooccur::{packed_index, packed_len};
use crate::ehr::plan::CountsRelease;
use crate::linalg::RandomizedSvd;
use crate::pmi::CountLayout;
use crate::spec::PmiSvdParams;

/// Counts summed over sites: the packed strict upper triangle.
#[derive(Clone, Debug, PartialEq)]
pub struct PooledCounts {
    /// Vocabulary size.
    pub n: usize,
    /// n(n−1)/2 summed counts.
    pub packed: Vec<f64>,
    /// Standard deviation of the summed noise on each cell (0 for exact counts).
    pub noise_std: f64,
}

impl PooledCounts {
    /// Sums releases over the same vocabulary; the noise variances add.
    pub fn from_releases(releases: &[&CountsRelease]) -> Result<PooledCounts, PmiError> {
        let n = releases.first().map_or(0, |r| r.header.n);
        let mut packed = vec![0.0f64; packed_len(n)];
        let mut variance = 0.0;
        for r in releases {
            if r.header.n != n || r.counts.len() != packed.len() {
                return Err(PmiError::PackedLength {
                    n,
                    expected: packed.len(),
                    got: r.counts.len(),
                });
            }
            for (s, &c) in packed.iter_mut().zip(&r.counts) {
                *s += f64::from(c);
            }
            variance += r.header.noise_std * r.header.noise_std;
        }
        Ok(PooledCounts {
            n,
            packed,
            noise_std: variance.sqrt(),
        })
    }

    /// Exact counts (no noise), e.g. pooled centrally in a simulation.
    pub fn exact(n: usize, counts: &[u32]) -> PooledCounts {
        PooledCounts {
            n,
            packed: counts.iter().map(|&c| f64::from(c)).collect(),
            noise_std: 0.0,
        }
    }
}

/// What the pipeline did, for the report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PipelineStats {
    /// Cells below this summed count were dropped: max(count_threshold, noise_cutoff·σ).
    pub cutoff: f64,
    /// Standard deviation of the summed noise per cell.
    pub noise_std: f64,
    /// Cells (pairs i < j) kept.
    pub cells_kept: usize,
    /// Concepts with at least one kept cell (the others get a zero vector).
    pub concepts_with_pmi: usize,
    /// The SVD rank asked for (min(dim, n − 1)).
    pub rank: usize,
    /// Components kept (positive eigenvalues).
    pub dim: usize,
}

/// Embeds pooled counts with the job's params.
pub fn embed_pooled(
    pooled: &PooledCounts,
    params: &PmiSvdParams,
) -> Result<(Embedding, PipelineStats), PmiError> {
    let n = pooled.n;
    if pooled.packed.len() != packed_len(n) {
        return Err(PmiError::PackedLength {
            n,
            expected: packed_len(n),
            got: pooled.packed.len(),
        });
    }
    let cutoff = params
        .count_threshold
        .max(params.noise_cutoff * pooled.noise_std);
    let mut counts = Mat::<f64>::zeros(n, n);
    let mut marginals = vec![0.0; n];
    let mut cells_kept = 0;
    for i in 0..n {
        for j in i + 1..n {
            let c = pooled.packed[packed_index(n, i, j)];
            if !c.is_finite() {
                return Err(PmiError::NonFiniteCount {
                    row: i,
                    col: j,
                    value: c,
                });
            }
            if c > 0.0 && c >= cutoff {
                counts[(i, j)] = c;
                counts[(j, i)] = c;
                marginals[i] += c;
                marginals[j] += c;
                cells_kept += 1;
            }
        }
    }
    let total: f64 = marginals.iter().sum();
    let concepts_with_pmi = marginals.iter().filter(|r| **r > 0.0).count();
    if total <= 0.0 {
        return Err(PmiError::InvalidTotal(total));
    }
    let m = sppmi(
        counts.as_ref(),
        CountLayout::Full,
        &marginals,
        total,
        &SppmiParams {
            count_threshold: cutoff,
            shift: params.shift_k,
        },
    )?;
    drop(counts);
    let rank = params.dim.min(n.saturating_sub(1)).max(1);
    let embedding = embed(
        m.as_ref(),
        &RandomizedSvd::new(rank).with_seed(params.svd_seed),
    )?;
    let stats = PipelineStats {
        cutoff,
        noise_std: pooled.noise_std,
        cells_kept,
        concepts_with_pmi,
        rank,
        dim: embedding.dim(),
    };
    Ok((embedding, stats))
}
