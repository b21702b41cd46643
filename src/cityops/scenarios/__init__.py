"""Scenario packs shipped with CityOps, one folder per domain (noise, flood, typhoon ...), each
with a `manifest.yaml` and a README that justifies its thresholds; `loader` reads and checks
them together with a city's own packs."""
