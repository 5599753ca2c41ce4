"""An independent SOAP server for interop tests: the LGSP operations implemented with spyne.

spyne generates its own schema from these classes and (``validator="lxml"``) validates every
request against it, so a zeep request that passes here matches a schema the hub did not write.
Types mirror ``schemas/wsdl/lgsp-motcua.xsd`` (names, order, occurrence).
"""

# ruff: noqa: RUF012  (spyne declares a model's fields as a class-level list)
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from spyne import Application, ComplexModel, ServiceBase, rpc
from spyne.model.binary import ByteArray
from spyne.model.primitive import AnyUri, Boolean, Integer, Long, Unicode
from spyne.protocol.soap import Soap11, Soap12
from spyne.server.wsgi import WsgiApplication

NS = "urn:motcua-hub:lgsp:document:1"
DATE = Unicode(pattern=r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
REQ = {"min_occurs": 1, "nillable": False}
OPT = {"min_occurs": 0, "nillable": False}
MANY = {"min_occurs": 0, "max_occurs": "unbounded", "nillable": False}


class MAttachment(ComplexModel):
    __namespace__ = NS
    _type_info = [
        ("AttachmentId", Unicode(**REQ)),
        ("AttachmentName", Unicode(**REQ)),
        ("IsDeleted", Boolean(**REQ)),
        ("Base64", ByteArray(**OPT)),
        ("Url", AnyUri(**OPT)),
        ("IsVerified", Boolean(**REQ)),
        ("ComponentCode", Unicode(**OPT)),
    ]


class MDocFee(ComplexModel):
    __namespace__ = NS
    _type_info = [("FeeName", Unicode(**REQ)), ("FeeType", Integer(**REQ)), ("Price", Long(**REQ))]


class MDocPaper(ComplexModel):
    __namespace__ = NS
    _type_info = [("PaperName", Unicode(**REQ)), ("Amount", Integer(**REQ)), ("PaperType", Unicode(**OPT))]


class MSupplementary(ComplexModel):
    __namespace__ = NS
    _type_info = [
        ("SupplementaryId", Unicode(**REQ)),
        ("SendUser", Unicode(**REQ)),
        ("SendComment", Unicode(**REQ)),
        ("SendDate", DATE(**REQ)),
        ("ReceivedUser", Unicode(**OPT)),
        ("ReceivedComment", Unicode(**OPT)),
        ("ReceivedDate", DATE(**OPT)),
        ("IsReceived", Boolean(**REQ)),
        ("Papers", MDocPaper.customize(**MANY)),
        ("Fees", MDocFee.customize(**MANY)),
        ("OldDateAppointed", DATE(**OPT)),
        ("NewDateAppointed", DATE(**OPT)),
    ]


class MSyncDocument(ComplexModel):
    __namespace__ = NS
    _type_info = [
        ("DocCode", Unicode(**REQ)),
        ("DocTypeCode", Unicode(**REQ)),
        ("DocTypeName", Unicode(**OPT)),
        ("CitizenName", Unicode(**REQ)),
        ("CitizenInfo", Unicode(**OPT)),
        ("ApplicantsId", Unicode(**OPT)),
        ("ApplicantsType", Integer(ge=1, le=4, **REQ)),
        ("Address", Unicode(**OPT)),
        ("Email", Unicode(**OPT)),
        ("Phone", Unicode(**OPT)),
        ("Compendium", Unicode(**OPT)),
        ("DateReceived", DATE(**REQ)),
        ("DateAppointed", DATE(**OPT)),
        ("IsSuccess", Boolean(**REQ)),
        ("SuccessDate", DATE(**OPT)),
        ("ApproverName", Unicode(**OPT)),
        ("ApproverPosition", Unicode(**OPT)),
        ("SuccessNote", Unicode(**OPT)),
        ("IsReturned", Boolean(**REQ)),
        ("ReturnedDate", DATE(**OPT)),
        ("ReturnNote", Unicode(**OPT)),
        ("ReturnedType", Integer(ge=0, le=1, **REQ)),
        ("FinishedDate", DATE(**OPT)),
        ("Status", Integer(ge=1, le=2, **REQ)),
        ("ProcessingOrganName", Unicode(**OPT)),
        ("HasSupplementary", Boolean(**REQ)),
        ("RequireSupplementaryDate", DATE(**OPT)),
        ("Note", Unicode(**OPT)),
        ("Attachments", MAttachment.customize(**MANY)),
        ("DocFees", MDocFee.customize(**MANY)),
        ("DocPapers", MDocPaper.customize(**MANY)),
        ("Supplementaries", MSupplementary.customize(**MANY)),
        ("OrganInchargeIdLevel1", Unicode(**OPT)),
        ("OrganInchargeName", Unicode(**OPT)),
        ("NationalStatus", Integer(ge=1, le=10, **OPT)),
        ("Channel", Integer(**OPT)),
        ("ReceivingAgencyCode", Unicode(**OPT)),
        ("FieldCode", Unicode(**OPT)),
        ("FieldName", Unicode(**OPT)),
        ("ReceiptNumber", Unicode(**OPT)),
        ("SubmittedDate", DATE(**OPT)),
        ("RefusedDate", DATE(**OPT)),
        ("PaidOnline", Boolean(**OPT)),
    ]


class MDocumentTraces(ComplexModel):
    __namespace__ = NS
    _type_info = [
        ("DocumentId", Unicode(**OPT)),
        ("DocCode", Unicode(**REQ)),
        ("UserName", Unicode(**REQ)),
        ("UserPosition", Unicode(**OPT)),
        ("DateCreated", DATE(**REQ)),
        ("Comment", Unicode(**REQ)),
        ("Status", Integer(ge=1, le=10, **REQ)),
        ("OrganizationInchargeIdLevel1", Unicode(**OPT)),
        ("OrganizationInchargeName", Unicode(**OPT)),
        ("StartDate", DATE(**OPT)),
        ("DeadlineDate", DATE(**OPT)),
    ]


class MResult(ComplexModel):
    __namespace__ = NS
    _type_info = [("Status", Integer(**REQ)), ("Message", Unicode(**REQ)), ("DocumentId", Unicode(**OPT))]


class Store:
    def __init__(self) -> None:
        self.documents: dict[str, Any] = {}
        self.traces: list[Any] = []
        self.fault_next: str | None = None


def _service(store: Store) -> type[ServiceBase]:
    from spyne.model.fault import Fault

    class LgspService(ServiceBase):
        @rpc(MSyncDocument.customize(**REQ), _returns=MResult.customize(**REQ), _out_variable_name="Result")
        def SyncDocument(ctx: Any, Document: Any) -> MResult:
            if store.fault_next:
                code, store.fault_next = store.fault_next, None
                raise Fault(faultcode=code, faultstring="spyne injected fault")
            store.documents[Document.DocCode] = Document
            return MResult(Status=1, Message="OK (spyne)", DocumentId=f"SPYNE-{len(store.documents)}")

        @rpc(
            MDocumentTraces.customize(min_occurs=1, max_occurs="unbounded", nillable=False),
            _returns=MResult.customize(**REQ),
            _out_variable_name="Result",
        )
        def UpdateDocumentTraces(ctx: Any, Traces: Any) -> MResult:
            store.traces.extend(Traces)
            return MResult(Status=1, Message=f"{len(Traces)} traces (spyne)")

        @rpc(
            Unicode(**REQ),
            _in_variable_names={"DocCode": "DocCode"},
            _returns=(MResult.customize(**REQ), MSyncDocument.customize(**OPT)),
            _out_variable_names=("Result", "Document"),
        )
        def GetDocument(ctx: Any, DocCode: str) -> tuple[MResult, Any]:
            doc = store.documents.get(DocCode)
            if doc is None:
                return MResult(Status=0, Message="not found"), None
            return MResult(Status=1, Message="OK"), doc

    return LgspService


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def spyne_server(version: str = "1.1") -> Iterator[tuple[str, Store]]:
    """Serve the spyne LGSP service on a free loopback port; yields (address, store)."""
    store = Store()
    protocol = Soap11 if version == "1.1" else Soap12
    app = Application(
        [_service(store)],
        tns=NS,
        name="SpyneLgsp",
        in_protocol=protocol(validator="lxml"),
        out_protocol=protocol(),
    )
    server: WSGIServer = make_server("127.0.0.1", 0, WsgiApplication(app), handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/", store
    finally:
        server.shutdown()
        server.server_close()
