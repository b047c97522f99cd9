"""`make bench`: statuspipe measured side by side with simple references on the same machine."""
