"""report: render result objects as Markdown, JSON, PNG charts and HTML."""
