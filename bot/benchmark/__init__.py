"""The route benchmark: prompt sets, the resumable runner, and its report."""
