"""The key files a role opens, checked before it starts work: one line and
exit 78 (EX_CONFIG) from every role, ``serve`` included, instead of a
traceback from inside uvicorn's start-up after "Uvicorn running on".

A sealed log without this host's commit seal keys, or a custody key file
that group or others can read, cannot be fixed by a restart: the operator
must copy or ``chmod`` a file, which the message names.
"""

from __future__ import annotations

from interface.chain.custody import CustodyKeyError
from interface.wiring.seal_keys import open_ledger
from interface.wiring.settings import Settings, SettingsError


def check_key_files(settings: Settings, *, custody: bool, auditing: bool = False) -> None:
    """Raise SettingsError naming the file when the commit seal keys do not
    open this ledger, or (``custody``: the roles that sign or read the
    chain) when a custody key file (the custody key, or the key of a power
    of its own) is unsafe or not a keypair.
    ``auditing``: opened as ``replay`` opens it (``open_ledger``)."""
    open_ledger(settings, auditing=auditing).close()
    if custody:
        from interface.wiring.settler import custody_keys

        try:
            custody_keys(settings)
        except CustodyKeyError as error:
            raise SettingsError(str(error)) from None
