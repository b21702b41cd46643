"""The offline base map: vector tiles built from the city pack and an OSM extract, served with
their style, glyphs and sprites by the node itself (nothing from a CDN)."""
