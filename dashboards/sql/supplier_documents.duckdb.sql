-- One row per document each supplier's policy requires, from supplier_risk's
-- documents_json (the newest document of each required kind, as the risk mart
-- checked it): doc_type, status (valid, expiring, expired, missing), its file and
-- expiry date. The virtual dataset `supplier_documents` (DuckDB serving views).
SELECT
    r.tenant_id,
    r.supplier_id,
    r.legal_name,
    d.doc_type,
    d.status,
    d.document_id,
    d.file_name,
    CAST(d.expiry_date AS DATE) AS expiry_date
FROM {schema}.supplier_risk AS r,
    unnest(from_json(
        r.documents_json,
        '[{"doc_type": "VARCHAR", "status": "VARCHAR", "document_id": "VARCHAR",
           "file_name": "VARCHAR", "expiry_date": "VARCHAR"}]'
    )) AS u (d)
