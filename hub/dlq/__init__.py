"""Dead-letter queue operations: inspect, retry, edit-and-retry, discard, bulk jobs (issue 2)."""
