"""`python -m lightnas COMMAND ...`, the same as `lightnas COMMAND ...`; what torchrun starts for
the other commands: `torchrun --nproc_per_node 2 -m lightnas retrain trainings/<search>`."""

import sys

from lightnas.cli import main

if __name__ == "__main__":
    sys.exit(main())
