"""Scoring architectures: cost metrics of a network, cost tables of a supernet's
architectures, the per-op latency table, and rewards and validation on shared weights."""
