"""The Centaur Python worker: runs workflow files' handlers for the manager.

The manager starts it as ``python3 -B -m centaur_worker --in-fd 3 --out-fd 4`` and speaks
PROTOCOL.md (beside this package) over the two pipes. Modules, in the order a command meets
them:

- ``main``: arguments, process set-up, the read loop.
- ``framing``: length-prefixed JSON frames on the pipes.
- ``sessions``: the commands: revisions, sessions, the cache of kept handlers.
- ``loader`` and ``metadata``: importing a revision in isolation, and what it declares.
- ``handler`` and ``loop``: a handler, its ctx and its deterministic event loop.
- ``steps``: step functions on threads and on the step event loop.
- ``jsonvalue`` and ``tracebacks``: values and errors as the manager and the author see them.
"""
