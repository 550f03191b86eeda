"""Running films through the stages: one film job, local or Ray executors, resume, stats."""
