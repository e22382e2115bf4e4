"""The catalogue: scraped items become one clean set of products (DESIGN.md §4 steps 3, 4, 5, 7).

Service functions for the DAG (plain arguments in, counts out):
`resolve.resolve_run`, `reconcile.reconcile`, `enrich.enrich`, `postprocess.post_process`.
Pure helpers (no I/O): `barcodes`, `brands`, `sizes`.
"""
