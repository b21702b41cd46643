"""The MQTT tests' own broker (dynamic security on a free port), as a fixture here."""

from tests.mqtt_kit import secure_broker  # noqa: F401
