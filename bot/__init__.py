"""The Matrix front door: decrypt -> crisis guard -> access -> parse -> execute -> report."""
