"""The commands' connection lookup: a site profile's secret from the Airflow connection it names.

The one place the commands touch Airflow, and only when a profile names a
connection (`request.secret.connection`): Airflow's secrets backends then
answer as they do for the DAG (an `AIRFLOW_CONN_<ID>` environment variable,
the metadata database, a vault). The library itself takes any lookup.
"""

from __future__ import annotations

from pricegroups.errors import ConfigError


def airflow_connection_secret(conn_id: str) -> str:
    """The password of the Airflow connection `conn_id`."""
    try:
        from airflow.sdk import BaseHook
    except ImportError as exc:  # pragma: no cover - Airflow is a requirement; a trimmed install may lack it
        raise ConfigError(f"connection {conn_id!r}: Airflow is not installed to read it ({exc});"
                          " use 'request.secret.env' instead") from exc
    try:
        connection = BaseHook.get_connection(conn_id)
    except Exception as exc:  # AirflowNotFoundException and the backends' own errors
        raise ConfigError(f"connection {conn_id!r} cannot be read from Airflow: {exc}") from exc
    return connection.password or ""
