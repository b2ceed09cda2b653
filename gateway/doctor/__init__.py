"""``council-gateway doctor``: checks of the live environment the gateway depends on.

Each module checks one part (DNS for the council's domains, the TLS certificate, clamd, the next
hops, this machine) and gives :class:`~gateway.doctor.results.Result` values: ok, warning or
problem, one plain-English sentence and the fix. What a fact means is decided by pure
``assess_*`` functions; the I/O that gathers the facts sits beside them, every network question
under a deadline. :mod:`gateway.doctor.runner` runs them all concurrently.

This package is imported by :mod:`gateway.assembly` for its ``[doctor]`` section
(:mod:`gateway.doctor.settings`), so nothing here is imported on import of the package itself.
"""
