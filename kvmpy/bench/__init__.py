"""`kvmpy bench`: measured comparisons, each a ratio against a baseline taken in the same run."""
