"""NGSI-LD (ETSI GS CIM 009): CityOps as a context broker speaking FIWARE Smart Data Models.

Mounted at `/ngsi-ld/v1`. The feature's parts, in the order data flows through them:

    contexts.py       the JSON-LD contexts CityOps ships and serves (never fetched from the net)
    entity.py         entities in and out: expansion, normalisation, compaction
    errors.py         ProblemDetails with the ETSI error types
    http.py           what the routes share at the edge: media types, parameters, guards' order
    query.py          the query language (q), geo-queries, attribute projection
    store.py          context entities: the ones no CityOps record stands behind
    sdm.py            Smart Data Models: which CityOps kinds are which types, units
    views.py          devices, alerts and service requests seen as entities
    feed.py           entities of mapped types written by producers become readings
    subscriptions.py  subscriptions and the notifications they send
    reading_match.py  stored readings matched to subscriptions, column-wise
    notifier.py       notifications sent over HTTP, one lane per subscription
    federation.py     subscribing to other brokers and taking their notifications in
    temporal.py       the temporal API over the readings history
    service.py        the parts a node holds, started and stopped with it
"""

PREFIX = "/ngsi-ld/v1"
