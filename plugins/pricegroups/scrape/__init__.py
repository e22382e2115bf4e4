"""The scraper: site profiles, polite fetching, raw snapshots, the parse engine, the scrape step.

Public entry points (what the DAG and the CLI call) live in
`pricegroups.scrape.service`; importing this package does no work.
"""
