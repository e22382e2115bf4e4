"""`python -m pricegroups ...`: see pricegroups.cli."""

import sys

from pricegroups.cli import main

if __name__ == "__main__":  # Airflow's plugin scan imports every file under plugins/
    sys.exit(main())
