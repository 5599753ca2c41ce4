"""Provincial integration platform (LGSP) connectors: SOAP (zeep) and REST (OAuth2, WSO2 paths).

docs/portal.md §4.2, §4.4: ``SyncDocument`` / ``UpdateDocumentTraces`` with ``MResult{Status, Message}``;
no public LGSP WSDL exists, so the hub ships its own (``schemas/wsdl/lgsp-motcua.wsdl``) and takes
a province's WSDL by configuration. Example (``HUB_CONFIG_FILE`` TOML)::

    [endpoints.lgsp]
    kind = "lgsp_soap"
    url = "https://lgsp.ninhbinh.example/services/motcua"      # service address (not the WSDL's)
    username = "motcua-h42"
    password = "…"
    [endpoints.lgsp.options]
    soap_version = "1.2"                                       # "1.1" (default) or "1.2"
    wsdl_path = "/etc/hub/wsdl/ninhbinh-lgsp.wsdl"              # local file only; default: bundled
    service_name = "DichVuHoSoTinh"                            # optional; default: by SOAP version
    port_name = "HoSoMotCuaSoap12Port"                         # optional
    operations = { sync = "SyncDocument", traces = "UpdateDocumentTraces", lookup = "GetDocument" }
    password_digest = true                                     # UsernameToken PasswordDigest

    [endpoints.lgsp-rest]
    kind = "lgsp_rest"
    url = "https://lgsp.ninhbinh.example"                      # token at {url}/token
    client_id = "…"
    client_secret = "…"
    [endpoints.lgsp-rest.options]
    context = "motcua"                                         # {url}/{context}/{version}/Document/…
    version = "1.0.0"

Both kinds are built by :func:`connectors.registry.build_connector`.
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
