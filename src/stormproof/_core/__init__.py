"""The sans-I/O core: clock, validation, events and errors shared by every policy."""
