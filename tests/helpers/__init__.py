"""Test helpers: live services on loopback (services) and external tools (external_tools)."""
