"""pricegroups: keep grocery prices current while learning which stores share a price list.

The library behind the Airflow DAG. It imports nothing from Airflow and does no
work at import time; functions take plain data and explicit dependencies
(a psycopg connection, a requests Session, a Settings object).
"""

__version__ = "0.1.0"
