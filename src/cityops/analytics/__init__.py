"""Community analytics over the city's data: garbage-sorting accuracy per community and the
15-minute elderly-care service circle (see docs/api.md, "Community analytics")."""
