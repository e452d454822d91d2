"""The optional groups of the driver interface, and the methods that make up each.

A driver declares ``capabilities``; the front answers a call of an undeclared group with one
contract-level error, and the conformance suite skips by capability. Part of the driver
interface: :mod:`backends.base` exports every name.
"""

from __future__ import annotations

import enum

__all__ = ["CAPABILITY_METHODS", "Capability"]


class Capability(enum.Enum):
    """Optional groups of the interface a driver declares it implements.

    Contacts and companies are the required core and have no capability flag.
    """

    ASSOCIATIONS = "associations"
    ACTIVITIES = "activities"
    TASKS = "tasks"
    USERS = "users"
    #: Listing and counting stored data for the dashboard's record pages (embedded stores).
    BROWSE = "browse"


#: The methods a driver must override to declare each capability (used by the conformance
#: suite to check declarations, and by the docs' support table).
CAPABILITY_METHODS: dict[Capability, tuple[str, ...]] = {
    Capability.ASSOCIATIONS: ("create_associations",),
    Capability.ACTIVITIES: ("create_activity",),
    Capability.TASKS: ("create_task", "get_tasks", "update_task"),
    Capability.USERS: ("list_users",),
    Capability.BROWSE: (
        "counts",
        "list_records",
        "list_associated",
        "list_activities",
        "list_tasks",
    ),
}
