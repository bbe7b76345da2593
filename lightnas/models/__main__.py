"""`python -m lightnas.models NAME --input 3x32x32`: the entry point of lightnas.commands.models."""

import sys

from lightnas.commands.models import main

if __name__ == "__main__":
    sys.exit(main())
