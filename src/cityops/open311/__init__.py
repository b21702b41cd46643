"""Open311 GeoReport v2 at `/open311/v2/`: the city's case categories as services, and service
requests that become incidents through the incident desk, with their status flowing back.

`services.py` maps categories to services and checks posted attributes, `service_requests.py`
files requests and reads them back, `formats.py` renders JSON and XML the way the spec's
examples do, `routes.py` holds the Starlette handlers and `openapi.py` their documentation.
"""

PREFIX = "/open311/v2"
