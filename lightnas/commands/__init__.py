"""One module per command of `lightnas COMMAND`: each parses its own arguments and calls the
layers below (run/, sweeps/, dashboard/, ...). `commands.models` is `python -m lightnas.models`."""
