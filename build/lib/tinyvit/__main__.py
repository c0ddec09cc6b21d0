"""Command line: `python -m tinyvit {info,train,eval,predict} ...` (see README)."""
import sys

from .run.cli import main

if __name__ == "__main__":
    sys.exit(main())
