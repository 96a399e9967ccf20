"""Evaluation metrics: closed-form Gaussian errors (`gaussian`) and sample-based scores."""
