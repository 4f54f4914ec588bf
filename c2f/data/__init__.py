"""Datasets: TVR-format annotations, the synthetic VCMR benchmark, feature corpora."""
