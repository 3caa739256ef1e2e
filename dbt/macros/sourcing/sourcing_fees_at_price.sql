{#
    Amazon's fees for one unit sold at `price`, from the fee structure kept per
    item (stg_sp_api__fee_estimates): the referral fee moves with the price, the
    fulfilment, closing and per-item fees do not. So a what-if price needs no new
    fee estimate from the API. sourcing/margins.py (`fees_at_price`,
    `margin_at_price`) is the same rule in Python; a test holds them together.
#}
{% macro sourcing_fees_at_price(price, referral_rate, fixed_fees) -%}
    (coalesce({{ referral_rate }}, 0) * ({{ price }}) + coalesce({{ fixed_fees }}, 0))
{%- endmacro %}

{#- What is left of `price` after the fees and the landed cost of one unit. -#}
{% macro sourcing_margin_at_price(price, referral_rate, fixed_fees, landed_cost) -%}
    (({{ price }}) - {{ sourcing_fees_at_price(price, referral_rate, fixed_fees) }} - ({{ landed_cost }}))
{%- endmacro %}
