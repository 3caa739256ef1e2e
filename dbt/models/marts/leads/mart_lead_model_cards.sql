-- Each tenant's lead model card, one row per tenant, as the API's
-- /v1/leads/model serves it (core/contracts/lead_model_cards.py): which model
-- scores its leads (its own, the pooled one, or the rules, and why), its
-- held-out metrics against the rules, its thresholds, and as JSON arrays its
-- features with weights and scaling, its calibration by decile (model and
-- rules) and what became of each custom attribute.
--
-- Built from the lead_model tables the Python asset writes (score_source():
-- no rows before any model has run). Numbers inside the JSON go through
-- score_json_number (six decimals), so the bytes are the same on DuckDB and
-- Postgres. Incremental per tenant, like the other lead marts.
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='tenant_id',
        on_schema_change='append_new_columns'
    )
}}

{%- set only_tenant = is_incremental() and run_tenant_id() %}

with

models as (

    select * from {{ score_source('lead_model', 'models') }} as model_rows
    {%- if only_tenant %}
    where {{ run_tenant_filter() }}
    {%- endif %}

),

features as (

    select
        features.tenant_id,
        {{ dbt.listagg(
            measure="'{\"feature\":' || " ~ score_json_string('features.feature')
                ~ " || ',\"kind\":' || " ~ score_json_string('features.kind')
                ~ " || ',\"source_column\":' || " ~ score_json_string('features.source_column')
                ~ " || ',\"coefficient\":' || " ~ score_json_number('features.coefficient')
                ~ " || ',\"mean\":' || " ~ score_json_number('features.mean')
                ~ " || ',\"scale\":' || " ~ score_json_number('features.scale') ~ " || '}'",
            delimiter_text="','",
            order_by_clause="order by abs(features.coefficient) desc, features.feature"
        ) }} as features_json
    from {{ score_source('lead_model', 'features') }} as features
    inner join models
        on features.tenant_id = models.tenant_id
        and features.model_version = models.model_version
    group by features.tenant_id

),

calibration as (

    select
        calibration.tenant_id,
        {{ dbt.listagg(
            measure="'{\"scorer\":' || " ~ score_json_string('calibration.scorer')
                ~ " || ',\"decile\":' || cast(calibration.decile as " ~ dbt.type_string() ~ ")"
                ~ " || ',\"leads\":' || cast(calibration.leads as " ~ dbt.type_string() ~ ")"
                ~ " || ',\"mean_predicted\":' || " ~ score_json_number('calibration.mean_predicted')
                ~ " || ',\"observed_rate\":' || " ~ score_json_number('calibration.observed_rate')
                ~ " || '}'",
            delimiter_text="','",
            order_by_clause="order by calibration.scorer, calibration.decile"
        ) }} as calibration_json
    from {{ score_source('lead_model', 'calibration') }} as calibration
    inner join models
        on calibration.tenant_id = models.tenant_id
        and calibration.model_version = models.model_version
    group by calibration.tenant_id

),

custom_attributes as (

    select
        custom_attributes.tenant_id,
        {{ dbt.listagg(
            measure="'{\"attribute\":' || " ~ score_json_string('custom_attributes.attribute')
                ~ " || ',\"decision\":' || " ~ score_json_string('custom_attributes.decision')
                ~ " || ',\"reason\":' || " ~ score_json_string('custom_attributes.reason')
                ~ " || '}'",
            delimiter_text="','",
            order_by_clause="order by custom_attributes.attribute"
        ) }} as custom_attributes_json
    from {{ score_source('lead_model', 'custom_attributes') }} as custom_attributes
    inner join models
        on custom_attributes.tenant_id = models.tenant_id
    group by custom_attributes.tenant_id

)

select
    models.tenant_id,
    cast(models.model_kind as {{ dbt.type_string() }}) as score_model,
    cast(models.model_version as {{ dbt.type_string() }}) as model_version,
    cast(models.config_version as {{ dbt.type_string() }}) as config_version,
    models.trained_at,
    cast(models.reason as {{ dbt.type_string() }}) as reason,
    cast(models.intercept as {{ type_double() }}) as intercept,
    cast(models.base_score as integer) as base_score,
    cast(models.labels_positive as integer) as labels_positive,
    cast(models.labels_negative as integer) as labels_negative,
    cast(models.labels_open as integer) as labels_open,
    cast(models.labels_used as integer) as labels_used,
    cast(models.train_rows as integer) as train_rows,
    cast(models.holdout_rows as integer) as holdout_rows,
    cast(models.holdout_positives as integer) as holdout_positives,
    cast(models.auc as {{ type_double() }}) as auc,
    cast(models.log_loss as {{ type_double() }}) as log_loss,
    cast(models.calibration_error as {{ type_double() }}) as calibration_error,
    cast(models.rules_auc as {{ type_double() }}) as rules_auc,
    cast(models.rules_log_loss as {{ type_double() }}) as rules_log_loss,
    cast(models.rules_calibration_error as {{ type_double() }}) as rules_calibration_error,
    cast(models.grade_a as integer) as grade_a,
    cast(models.grade_b as integer) as grade_b,
    cast(models.grade_c as integer) as grade_c,
    cast(models.mql_threshold as integer) as mql_threshold,
    '[' || coalesce(features.features_json, '') || ']' as features_json,
    '[' || coalesce(calibration.calibration_json, '') || ']' as calibration_json,
    '[' || coalesce(custom_attributes.custom_attributes_json, '') || ']'
        as custom_attributes_json
from models
left join features
    on models.tenant_id = features.tenant_id
left join calibration
    on models.tenant_id = calibration.tenant_id
left join custom_attributes
    on models.tenant_id = custom_attributes.tenant_id
