"""`python -m lightnas COMMAND ...` = `lightnas COMMAND ...`."""

import sys

from lightnas.cli import main

sys.exit(main())
