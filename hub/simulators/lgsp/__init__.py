"""A stand-in provincial LGSP: SOAP 1.1/1.2 on the WSDL, the REST flavour, ``/token``, and faults.

A real HTTP server on the shared harness (:mod:`hub.simulators.harness`), so tests and the
benchmark exercise real sockets. Split by concern: :mod:`~hub.simulators.lgsp.contract` (WSDL and
XSD validation), :mod:`~hub.simulators.lgsp.soap` (envelope, WS-Security, WS-Addressing, answers
and SOAP faults), :mod:`~hub.simulators.lgsp.rest` (OAuth2 and the REST flavour),
:mod:`~hub.simulators.lgsp.state` (records and what is remembered),
:mod:`~hub.simulators.lgsp.faults` (the protocol's fault kinds) and
:mod:`~hub.simulators.lgsp.simulator` (the HTTP front). Accepted requests are kept as
:class:`SimulatorRecord`; refused ones are counted with their reason and never stored.
"""

from hub.simulators.lgsp.contract import LgspContract
from hub.simulators.lgsp.faults import LgspFault
from hub.simulators.lgsp.simulator import LgspSimulator, describe
from hub.simulators.lgsp.state import SimulatorRecord

__all__ = ["LgspContract", "LgspFault", "LgspSimulator", "SimulatorRecord", "describe"]
