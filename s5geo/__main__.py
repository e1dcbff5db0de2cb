"""Allow ``python -m s5geo``."""

import sys

from s5geo.cli.main import main

sys.exit(main())
