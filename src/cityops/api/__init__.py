"""The HTTP API (OpenAPI 3.1 at /openapi.json), served with Starlette."""
