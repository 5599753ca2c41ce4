"""Canonical data model of the hub: one-stop dossiers and what the portals exchange about them.

Connectors translate between these models and each portal's wire format; nothing outside
``connectors/`` sees a wire format.
"""
