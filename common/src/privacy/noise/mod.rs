//! Noise sources (placeholder until the samplers land).
