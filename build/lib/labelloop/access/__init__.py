"""Who is who: projects and their members, users, API tokens, roles and the audit log."""
