"""``python -m mockfgt``: the same command as ``mockfgt``."""

import sys

from .cli import main

sys.exit(main())
