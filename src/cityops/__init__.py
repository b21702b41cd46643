"""CityOps: sense, detect, act, see and serve a city from one operations centre."""

__version__ = "0.1.0"
