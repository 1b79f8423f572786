"""Camera side of the pipeline: pylon frame source, flash-phase labelling, clock mapping."""
