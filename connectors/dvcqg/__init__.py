"""Connector to the National Public Service Portal (Cổng DVCQG) adapter API.

See docs/portal.md §3 (outbound services), §6 (inbound pushes) and §10 (unconfirmed
points, all configurable through :class:`~connectors.dvcqg.options.DvcqgOptions`).
"""

from connectors.dvcqg.catalog import CodeName, ProcedureCatalog, ProcedureInfo
from connectors.dvcqg.client import DvcqgClient
from connectors.dvcqg.connector import DvcqgConnector, build_dvcqg_connector
from connectors.dvcqg.lookup import DossierLookup
from connectors.dvcqg.options import DvcqgOptions

__all__ = [
    "CodeName",
    "DossierLookup",
    "DvcqgClient",
    "DvcqgConnector",
    "DvcqgOptions",
    "ProcedureCatalog",
    "ProcedureInfo",
    "build_dvcqg_connector",
]
