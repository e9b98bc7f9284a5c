"""Tables, migrations and the one session factory."""
