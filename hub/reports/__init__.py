"""On-time statistics of one-stop dossiers (issue 12; docs/reports.md)."""
