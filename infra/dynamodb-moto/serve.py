"""moto's DynamoDB (and DynamoDB Streams) on 127.0.0.1, one request at a time.

`make dynamodb-moto` runs this: an open-source DynamoDB endpoint for DYNAMODB_ENDPOINT, for
those who may not run DynamoDB Local. moto's own `moto_server` serves requests on several
threads and then applies concurrent conditional writes without isolation (two senders
reserved 21 messages in a second limited to 20), which would break every guarantee the
store's conditions give; one request at a time keeps each write atomic, as DynamoDB does.
Data lives in memory until the process stops.
"""

import sys

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    app = DomainDispatcherApplication(create_backend_app)
    print(f"moto (DynamoDB) on http://127.0.0.1:{port}, one request at a time", flush=True)
    run_simple("127.0.0.1", port, app, threaded=False, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
