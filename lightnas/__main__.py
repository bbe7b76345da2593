"""`python -m lightnas COMMAND ...` = `lightnas COMMAND ...`."""

import sys

from lightnas.cli import main

if __name__ == "__main__":
    sys.exit(main())
