"""Test support: stores, services and ledgers the tests share."""
