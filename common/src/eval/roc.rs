//! ROC statistics of scores for positives (related pairs) against negatives (random
//! pairs): the AUC and the true-positive rate at a fixed false-positive rate.

/// Area under the ROC curve by the Mann–Whitney U statistic: the probability that a random
/// positive scores above a random negative, ties counting one half. `None` when either
/// side is empty. Scores must not be NaN (callers reject them earlier).
pub fn auc(positives: &[f64], negatives: &[f64]) -> Option<f64> {
    if positives.is_empty() || negatives.is_empty() {
        return None;
    }
    let mut all: Vec<(f64, bool)> = positives
        .iter()
        .map(|&s| (s, true))
        .chain(negatives.iter().map(|&s| (s, false)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Sum of the positives' (1-based, tie-averaged) ranks.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let mean_rank = (i + j) as f64 / 2.0 + 1.0;
        let pos_in_tie = all[i..=j].iter().filter(|x| x.1).count();
        rank_sum += mean_rank * pos_in_tie as f64;
        i = j + 1;
    }
    let (np, nn) = (positives.len() as f64, negatives.len() as f64);
    Some((rank_sum - np * (np + 1.0) / 2.0) / (np * nn))
}

/// True-positive rate at false-positive rate at most `fpr`: the threshold is the
/// (⌊fpr·n⌋+1)-th largest negative score and a positive counts only when strictly above
/// it, so ties never push the realised FPR above `fpr`. `None` when either side is empty
/// or `fpr` is outside [0, 1].
pub fn tpr_at_fpr(positives: &[f64], negatives: &[f64], fpr: f64) -> Option<f64> {
    if positives.is_empty() || negatives.is_empty() || !(0.0..=1.0).contains(&fpr) {
        return None;
    }
    let mut neg = negatives.to_vec();
    neg.sort_by(|a, b| b.total_cmp(a));
    let allowed = (fpr * neg.len() as f64).floor() as usize;
    if allowed >= neg.len() {
        return Some(1.0);
    }
    let threshold = neg[allowed];
    let hits = positives.iter().filter(|&&s| s > threshold).count();
    Some(hits as f64 / positives.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_separation_is_one() {
        let pos = [0.9, 0.8, 0.7];
        let neg = [0.1, 0.2, 0.3, 0.4];
        assert_eq!(auc(&pos, &neg), Some(1.0));
        assert_eq!(auc(&neg, &pos), Some(0.0));
        for f in [0.0, 0.01, 0.05, 0.1] {
            assert_eq!(tpr_at_fpr(&pos, &neg, f), Some(1.0));
        }
    }

    #[test]
    fn identical_scores_are_one_half() {
        let pos = [0.5; 5];
        let neg = [0.5; 7];
        assert_eq!(auc(&pos, &neg), Some(0.5));
        assert_eq!(tpr_at_fpr(&pos, &neg, 0.1), Some(0.0));
    }

    #[test]
    fn hand_computed_auc_with_ties() {
        // 0.8 beats both negatives; 0.5 beats 0.1 and ties 0.5: (2 + 1.5) / 4.
        let pos = [0.8, 0.5];
        let neg = [0.1, 0.5];
        assert_eq!(auc(&pos, &neg), Some(0.875));
        assert_eq!(auc(&[], &neg), None);
        assert_eq!(auc(&pos, &[]), None);
    }

    #[test]
    fn tpr_threshold_respects_the_fpr() {
        // 10 negatives 0.0..0.9; at FPR 0.1 one negative (0.9) may be above the
        // threshold, so the threshold is 0.8 and positives must beat it.
        let neg: Vec<f64> = (0..10).map(|i| f64::from(i) / 10.0).collect();
        let pos = [0.85, 0.95, 0.75, 0.5];
        assert_eq!(tpr_at_fpr(&pos, &neg, 0.1), Some(0.5));
        assert_eq!(tpr_at_fpr(&pos, &neg, 0.05), Some(0.25));
        assert_eq!(tpr_at_fpr(&pos, &neg, 1.0), Some(1.0));
        assert_eq!(tpr_at_fpr(&pos, &neg, 1.5), None);
    }
}
