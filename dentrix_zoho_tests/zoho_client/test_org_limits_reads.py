"""An outage of the org's limits database is not "Zoho has no metadata": read-back and rollback stop cleanly
instead of carrying on with what a missing answer would mean (no field types, no read-only fields)."""

from __future__ import annotations

from typing import Any

import pytest

from dentrix_zoho.load.readback import ReadBack
from dentrix_zoho.rollback.adapter import ZohoRollbackWriter
from dentrix_zoho.zoho import OrgLimitsUnavailable


def test_field_types_are_not_taken_for_absent_while_the_limits_database_is_down(
    private_pg_server: Any, emulator: Any, kit: Any
) -> None:
    client = kit.client_for(emulator, org_limits_url=private_pg_server.url(), org_key="dso")
    try:
        assert client.fields("Contacts")  # the database answers: a normal read
        client._fields.clear()  # noqa: SLF001 - the client's cache would hide the outage
        reader = ReadBack(client)
        private_pg_server.stop("fast")
        with pytest.raises(OrgLimitsUnavailable):
            reader.by_id_only_fields("Contacts")
        with pytest.raises(OrgLimitsUnavailable):
            ZohoRollbackWriter(client).read_only_fields(["Contacts"])
        private_pg_server.start()
        # Nothing wrong was cached during the outage: the same reader now knows the module's fields.
        assert reader.by_id_only_fields("Contacts") is not None
        assert "Contacts" in ZohoRollbackWriter(client).read_only_fields(["Contacts"])
    finally:
        client.close()
