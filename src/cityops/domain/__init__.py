"""The pure domain core: city model, readings, access rules. Imports no I/O."""
