"""Types shared across the core."""

from __future__ import annotations

import uuid

# A task's id as the core takes it: the UUID of its row, or that UUID as text (RQ's job id).
TaskId = uuid.UUID | str
