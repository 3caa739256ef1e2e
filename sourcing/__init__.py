"""Product sourcing: supplier price lists, the tenant's sourcing assumptions, and
the margin arithmetic the opportunity marts use (the marts themselves are dbt)."""
