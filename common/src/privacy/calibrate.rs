//! Noise calibration: the smallest noise multiplier that meets a target (ε, δ).
