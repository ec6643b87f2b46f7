"""Errors a person can act on.

`PlatformError` messages are printed as one line by the CLI (no traceback), so each one
says what went wrong and what to do about it.
"""


class PlatformError(Exception):
    """A failure with a message meant for the person running the platform."""


class UnknownTenantError(PlatformError):
    def __init__(self, tenant_id: str):
        super().__init__(
            f"unknown tenant {tenant_id!r}: run `bizosaas tenants list` to see the registered ones"
        )
        self.tenant_id = tenant_id
