"""Provincial integration platform (LGSP) connectors: SOAP (zeep) and REST (OAuth2, WSO2 paths).

National-portal.md §4: ``SyncDocument`` / ``UpdateDocumentTraces`` with ``MResult{Status, Message}``.
"""

from connectors.lgsp.connector import (
    LgspRestConnector,
    LgspSoapConnector,
    build_lgsp_rest_connector,
    build_lgsp_soap_connector,
)

__all__ = [
    "LgspRestConnector",
    "LgspSoapConnector",
    "build_lgsp_rest_connector",
    "build_lgsp_soap_connector",
]
