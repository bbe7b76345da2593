"""The engine: the search loop (loop.py, one file read top to bottom) and what only it uses: its
records (metrics rows, checkpointed progress), its checkpoint format (state.py), the optimizer
and learning rate, the losses, the training sampler and the final selection. It touches no
files: outputs hang off it as callbacks."""
