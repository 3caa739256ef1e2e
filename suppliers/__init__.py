"""Suppliers: records, screening lists and orders from the inbox, the screening
matcher, the tenant's supplier policy and the reviewers' decisions.

Plain functions; the Dagster wiring is assets/suppliers.py, the risk itself is
dbt (dbt/models/*/suppliers/), the review API serving/routes/suppliers.py.
"""
