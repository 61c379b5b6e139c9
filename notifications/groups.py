"""Channel-layer group names: the one place that decides who hears about a task."""

# Every staff socket that asked for all tasks (the admin's live list) listens here.
STAFF_GROUP = "staff.tasks"


def user_group_name(user_id: int) -> str:
    return f"user.{user_id}.tasks"
