"""A datasette plugin that ``harness serve`` loads (``--plugins-dir``): the server answers reads only.

Any request whose method is not GET, HEAD or OPTIONS gets a plain ``405 Method Not Allowed`` (with
``Allow: GET, HEAD, OPTIONS``) before datasette sees it: datasette 0.65 answers a POST to a table or a
canned query with a 500 and a traceback page. The database is immutable anyway; this keeps the answer clean.
"""

from datasette import hookimpl

ALLOWED = ("GET", "HEAD", "OPTIONS")


@hookimpl
def asgi_wrapper(datasette):
    def wrap(app):
        async def read_only(scope, receive, send):
            if scope["type"] == "http" and scope.get("method", "GET").upper() not in ALLOWED:
                body = (f"{scope.get('method')} is not allowed: harness serve is read-only "
                        f"(use GET)\n").encode()
                await send({"type": "http.response.start", "status": 405,
                            "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                        (b"allow", ", ".join(ALLOWED).encode()),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
            await app(scope, receive, send)

        return read_only

    return wrap
