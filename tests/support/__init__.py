"""Test support: real services the tests start and always stop."""
