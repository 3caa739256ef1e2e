-- One row per document each supplier's policy requires, from supplier_risk's
-- documents_json (the newest document of each required kind, as the risk mart
-- checked it): doc_type, status (valid, expiring, expired, missing), its file and
-- expiry date. The virtual dataset `supplier_documents` (Postgres serving schema).
SELECT
    r.tenant_id,
    r.supplier_id,
    r.legal_name,
    d ->> 'doc_type' AS doc_type,
    d ->> 'status' AS status,
    d ->> 'document_id' AS document_id,
    d ->> 'file_name' AS file_name,
    CAST(d ->> 'expiry_date' AS date) AS expiry_date
FROM {schema}.supplier_risk AS r
CROSS JOIN LATERAL jsonb_array_elements(CAST(r.documents_json AS jsonb)) AS d
