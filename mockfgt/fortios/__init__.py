"""FortiGate emulation: ``models`` (state), ``tables`` (CMDB tables), ``wire`` (REST API v2), ``kind``."""
