"""Reports: Markdown (zh and en), plots, JSON export."""
