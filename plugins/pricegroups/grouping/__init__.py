"""Store grouping: learn which stores share a price list (DESIGN.md §4 step 8, §5).

Functional core, imperative shell:

* `pricing`, `comparer`, `model`, `health`, `blocking`, `merging`, `book` are
  pure: frozen dataclasses and numpy arrays in, decisions out, no I/O.
* `repository` loads current pricing from PostgreSQL and applies decisions;
  `service` holds the run-level functions the DAG calls; `planning` decides
  which stores a run scrapes; `offline` runs the same core on CSV files.

Nothing is imported here so that `import pricegroups.grouping` stays cheap.
"""
