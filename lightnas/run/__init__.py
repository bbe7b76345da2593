"""Assembling a run: its parts (data, supernet, strategy, teacher) and engine, its training
folder (lock, config, log), resuming it, and the search and retrain runs as their commands
start them. Sweeps, benchmarks and tests start runs through this folder."""
