"""hookd: the webhook delivery daemon between the scheduler's RabbitMQ events and account webhooks."""

__version__ = "0.1.0"
