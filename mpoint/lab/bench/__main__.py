"""``python -m mpoint.lab.bench`` = ``python -m mpoint bench``."""
import sys

from . import main

sys.exit(main())
