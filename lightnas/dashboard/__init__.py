"""The dashboard in the browser (`lightnas dashboard`, issue #10): every run and sweep under a
folder, live curves, the controller's choice probabilities, the architectures, compare, downloads,
launch / stop / resume. The server is an optional extra: pip install -e ".[dashboard]"; its
command line is lightnas.commands.dashboard."""
