"""Business directory logic (OpenStreetMap listings), free of orchestration and database code."""
