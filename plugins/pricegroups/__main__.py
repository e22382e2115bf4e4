"""`python -m pricegroups ...`: see pricegroups.cli."""

import sys

from pricegroups.cli import main

sys.exit(main())
