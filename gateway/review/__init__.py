"""The clerk's quarantine page: held mail reviewed in a browser, safely.

``settings`` reads the ``[review]`` section; ``auth`` holds the password, the sessions, the login
form's token, the login limit and whose address a request comes from; ``app`` is the Starlette
application and ``serve`` runs it with uvicorn, alone (``council-gateway review``) or beside the
listeners (``council-gateway run``).
"""
