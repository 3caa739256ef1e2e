"""Supplier documents: read, classified and with their fields extracted (issue 9)."""
