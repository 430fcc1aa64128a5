"""``python -m mockfgt.diagnose URL [options]``."""

import sys

from .cli import main

sys.exit(main())
