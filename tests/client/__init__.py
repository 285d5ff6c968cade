"""The client (``pytest_scriptum.client``): both transports against the dev server, scripted servers
and renumbered wire formats; TLS by default."""
