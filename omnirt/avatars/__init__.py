"""The avatar domain: media defaults and session message kinds, prepared avatars and their store, which model
serves an avatar name (and whether it can run), and the per-worker scheduler that batches frames across sessions.

Nothing here imports Flask; nothing imports torch at module level, so the API can use the names, the store and the
media contract without it.
"""
