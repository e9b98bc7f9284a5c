"""Web pages for annotators, reviewers and the team (``labelloop.web.pages``)."""
