//! DP mechanisms (placeholder until the mechanisms land).
