"""The core: settings, errors and shared enums. It imports no stage."""
