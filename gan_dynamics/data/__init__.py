"""Data sources: synthetic Gaussian manifolds (`synthetic`) and image datasets."""
