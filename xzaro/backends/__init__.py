"""Backends that present xzaro arrays to other libraries (the xarray engine ``"zaro"``)."""
