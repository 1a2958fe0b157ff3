"""Prometheus metrics and ``/healthz`` of novalet's services.

``endpoint``: ``setup(conf, workers=)`` turns metrics on (``[metrics]
bind_port`` set), ``serve(conf, checks=, collectors=)`` starts the HTTP
endpoint. The hooks the code calls are no-ops while metrics are off:
``conductor.observe`` (the conductor's object endpoints),
``compute.audit`` / ``compute.claim`` (the resource tracker),
``heartbeat`` (servicegroup reporters), ``database.watch`` (every engine,
hooked into the database layer when metrics are turned on).
Scrape-time collectors: ``fleet.FleetCollector`` (the conductor),
``compute.ComputeNodeCollector`` (a compute's nodes). ``health``: the checks
behind ``/healthz``. Submodules are imported by their users: this package
imports none of them.
"""
