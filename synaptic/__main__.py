"""``python -m synaptic ...`` (also the ``synaptic`` script); the commands are in cli.py."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
