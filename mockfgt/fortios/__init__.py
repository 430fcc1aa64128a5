"""FortiGate emulation: ``models`` (state), ``tables`` (CMDB tables), ``wire`` (REST API v2), ``kind``."""

#: The REST API v2 methods that change something: what a read-only profile is refused, what bumps the
#: configuration revision, what needs the CSRF token in a session (wire.py and logins.py both ask).
#: mockfgt.fortios.client, the client side, keeps its own copy on purpose.
WRITE_METHODS = ("POST", "PUT", "DELETE")
