"""Queue numbers for the service hall: a citizen takes a number for a department's counter
(at the kiosk or on the portal), a clerk of that department calls the next one, the waiting
time is estimated from the recent calls, and the waits of the numbers called join the
evaluation. `hall` is the pure day of one counter; `service` keeps it in the store."""

from cityops.serve.queue.service import QueueHall, hall_of

__all__ = ["QueueHall", "hall_of"]
