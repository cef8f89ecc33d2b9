"""``vigil dev``: the whole system on one machine, what ``make dev`` runs.

The package: ``stack.py`` runs it (servers, migrations, demo data, children, banner);
``embedded.py`` starts PostgreSQL and Redis in a folder (the tests use it too); ``envfile.py``
keeps ``dev.env``; ``seed.py`` makes the demo org, its token and the local agent;
``supervisor.py`` runs the child processes and prints their output.

It keeps its state in one folder, ``VIGIL_DEV_DIR`` (default ``.vigil/dev`` under the current
directory, which git ignores):

- ``dev.env`` (mode 0600): the deployment secrets and the demo credentials, generated on the first
  run and reused afterwards, in ``KEY=value`` lines a shell can source;
- ``pg/`` and ``redis/``: the embedded PostgreSQL (database ``vigil``) and Redis;
- ``agent-spool/``: the local agent's buffer of results not yet delivered;
- ``dev.lock``: held while a ``vigil dev`` runs on the folder, so two never share it.

A ``VIGIL_*`` variable set in the environment wins: with ``VIGIL_DATABASE_URL`` or
``VIGIL_REDIS_URL`` that server is used instead of an embedded one. Children (API, worker, agent)
get the resulting environment; their output is printed line by line behind their name. SIGINT or
SIGTERM stops the children, then the embedded servers, and returns 0; a child that dies stops
everything and returns 1.
"""
