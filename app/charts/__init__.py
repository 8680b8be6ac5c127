"""Statistics: scoped aggregate queries, pure Plotly figures, thin views (DESIGN.md §3)."""
