"""Run an ENAS search: python train_enas.py -c configs/quickstart.yml"""

import sys

from lightnas.cli import search_main

if __name__ == "__main__":
    sys.exit(search_main())
