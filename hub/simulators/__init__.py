"""Stand-ins for the hub's partners, on one harness: DVCQG, LGSP, a webhook sink and the test PKI.

:mod:`hub.simulators.harness` is the runner and control API, :mod:`hub.simulators.faults` the one
fault model; :mod:`~hub.simulators.dvcqg`, :mod:`~hub.simulators.lgsp`, :mod:`~hub.simulators.sink`
and :mod:`~hub.simulators.pki` are the simulators. They live in the hub because they use both
sides of the layering: the connectors' wire models and the signing package's PKI responders
(docs/architecture.md; connectors and signing never import each other).
"""
