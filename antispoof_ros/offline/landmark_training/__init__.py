"""Fitting and measuring the landmark models: detector and corner-model training, accuracy."""
