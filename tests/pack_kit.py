"""A scenario pack for tests that run whole nodes: one alert per loud spell of a noise meter
(over 80 dB(A), cleared below 70), urgent, for the environment department."""

LOUD = """
name: loud
version: 1
title: Very loud
category: {code: event.test.loud, kind: event, major: test, minor: loud, name: Loud}
departments: [environment]
urgency: high
rules:
  - id: over_80
    type: threshold
    kind: noise
    above: 80
    clear_below: 70
    title: Noise over 80 dB(A)
    # Tests count one alert per loud spell and one case per alert.
    flap: 0s
    group: {off: true}
"""
