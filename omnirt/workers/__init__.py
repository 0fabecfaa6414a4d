"""Worker lifecycle: heartbeats, the job executor shared by Celery and embedded threads, the reaper of jobs whose
worker died, Celery signals and bootsteps, and the ``omnirt worker`` wrapper."""
