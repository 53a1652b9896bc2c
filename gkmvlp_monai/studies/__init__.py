"""Study runner and summary: every task's study runs its bundle through one runner, one result format."""
