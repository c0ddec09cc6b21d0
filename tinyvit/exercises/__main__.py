"""`python -m tinyvit.exercises init | list | check N | hint N | solution N | grade ...`."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
