"""LGSP WSDL and XSD files (package data; see ``lgsp-motcua.wsdl``)."""
