"""Cluster mode: Celery workers over Redis or RabbitMQ running renders chunk by chunk."""
