"""FortiManager emulation (JSON-RPC)."""
