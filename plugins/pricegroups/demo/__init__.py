"""The demo chain site: a simulated set of supermarket websites driven by a scenario.

`Scenario` (scenario.py) holds chains, stores, hidden zones, listings and events,
and answers ground-truth questions; `DemoSite` (server.py) serves it over HTTP.
See docs/demo-site.md and docs/scenario.md.
"""
