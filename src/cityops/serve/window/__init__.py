"""The remote virtual window: a citizen's video call with a clerk of the department that
handles their application, signalled through the node (`hub.py`), with the clerk able to push
the application's form for the citizen to fill (`forms.py`). The media itself flows between
the two browsers (WebRTC); the node only relays what the two parties of one call say."""
