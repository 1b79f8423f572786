"""Training pipeline of the liveness classifier: dataset cache, splits, augmentation, training."""
