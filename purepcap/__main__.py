# `python -m purepcap`: the same command line as the `purepcap` console script.
import sys

from .cli import main

sys.exit(main())
