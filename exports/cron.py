"""Periodic jobs, run by RQ's cron scheduler: `python manage.py rqcron exports.cron`.

The scheduler only enqueues; a worker runs the jobs. One scheduler per deployment is enough,
and RQ keeps a second one harmless.
"""

from django.conf import settings
from rq import cron

from exports.jobs import exports_expire_job, tasks_reconcile_job

cron.register(tasks_reconcile_job, "default", interval=settings.TASK_RECONCILE_INTERVAL_SECONDS, job_timeout=60)
cron.register(exports_expire_job, "default", cron="17 * * * *", job_timeout=600)
