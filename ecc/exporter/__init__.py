"""``ecc exporter``: Prometheus metrics from the events and maps of eunomia packages.

- ``config``: reading and checking the configuration (YAML or JSON), before anything loads;
- ``metrics``: event counters, map histograms and gauges, the series limit, the collector;
- ``programs``: each program loaded by ``ecc run``'s Runner, its poll thread and event queue;
- ``api``: the control API (start, list, stop) behind a bearer token;
- ``server``: the HTTP server for ``/metrics`` and the API, and the command's main loop.
"""
