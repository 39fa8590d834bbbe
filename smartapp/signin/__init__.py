"""The SMART launch as Flask views: /launch, /callback, the session cookie."""
