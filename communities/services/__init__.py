"""Every write of the communities app. Pages, the API, the admin, imports and tasks
call these; each writes its audit row and queues its side effects."""
