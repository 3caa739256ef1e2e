{#
    Free-mail providers: an address there says nothing about the company. One
    list for the rules score (int_leads_scored), the identity rule
    (int_lead_touches: no domain match on free mail) and the fit features.
#}
{% macro lead_free_mail_domains() -%}
    {{ return([
        'gmail.com', 'googlemail.com', 'yahoo.com', 'yahoo.co.uk', 'yahoo.fr', 'yahoo.de',
        'ymail.com', 'rocketmail.com', 'hotmail.com', 'hotmail.co.uk', 'hotmail.fr', 'hotmail.de',
        'outlook.com', 'live.com', 'msn.com', 'aol.com', 'icloud.com', 'me.com', 'mac.com',
        'proton.me', 'protonmail.com', 'gmx.com', 'gmx.de', 'gmx.net', 'web.de', 'mail.com',
        'mail.ru', 'yandex.com', 'yandex.ru', 'fastmail.com', 'tutanota.com',
        'qq.com', '163.com', '126.com'
    ]) }}
{%- endmacro %}
