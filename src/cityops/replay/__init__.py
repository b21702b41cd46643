"""Replays of real records through the node's own doors (`cityops replay ...`)."""
