"""What an operator sees of the groups: read-only queries, SVG charts and HTML pages (docs/ui.md).

No Airflow imports here: the Airflow plugin (plugins/pricegroups_ui_plugin.py)
passes in Airflow's authentication and the database connection.
"""
