"""``python cli.py COMMAND …`` in a checkout: the same command line as the installed ``polarscan``.

The command line itself lives in :mod:`polarscan.cli`; this file only lets a checkout run it
without installing (`python cli.py scan --source demo --out DIR`).
"""

import sys

from polarscan.cli import main

if __name__ == "__main__":
    sys.exit(main())
