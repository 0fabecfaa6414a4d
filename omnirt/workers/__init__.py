"""Worker lifecycle: the engine a process runs models with, the job executor shared by Celery and the embedded
server's worker threads, realtime session loops, heartbeats, the reaper of jobs whose worker died, and the Celery
bootstep and signals."""
