"""The one path every message takes, in order, one module per stage:

    decrypt.py -> guard.py -> access.py -> parse.py -> execute.py -> report.py
    (decrypt -> crisis guard -> access control -> parse -> execute -> report)

Only the guard may read a body before the guard has passed it; no stage logs a body.
`flow.py` takes a message through the stages and `rooms.py` keeps each room's work in
order and rooms side by side.

This module is only that map: importing one stage never runs the others (the package's
own code runs before any of its modules, so a heavy `__init__` here closed import cycles
through every module that needs a `Reply`).
"""
