{#-
    A phone number in E.164 (`+14155550123`), or null when it cannot be one.

    Handles what people type: spaces, dots, dashes and brackets; a leading `+`; the `00` (and the
    country's own, e.g. US `011`) international prefix; the national trunk prefix (`0` in GB/DE/FR,
    `1` in US/CA) and a `(0)` or `0` written after the country code; an extension (`x12`, `ext. 12`,
    `#12`). National numbers are read in the row's country (`country_column`, ISO-2) or else in var
    `cdp_default_phone_country` (when null: var `cdp_default_country`, else US). Lengths are checked per calling code for the countries below
    (var `cdp_phone_countries` adds or overrides countries); other codes only need 8 to 15 digits.

    The expression is a chain of regular-expression replacements over "<country>:<digits>", so each
    input appears once in the SQL, however many countries are configured.
-#}

{#- calling_code; trunk_prefix (dropped from national numbers); international_prefix when not `00`;
    lengths = [min, max] digits of the national number without trunk; first_digit of that number. -#}
{% macro cdp_phone_country_rules() -%}
    {%- set rules = {
        'US': {'calling_code': '1', 'trunk_prefix': '1', 'international_prefix': '011', 'lengths': [10, 10], 'first_digit': '[2-9]'},
        'CA': {'calling_code': '1', 'trunk_prefix': '1', 'international_prefix': '011', 'lengths': [10, 10], 'first_digit': '[2-9]'},
        'GB': {'calling_code': '44', 'trunk_prefix': '0', 'lengths': [9, 10]},
        'IE': {'calling_code': '353', 'trunk_prefix': '0', 'lengths': [7, 9]},
        'DE': {'calling_code': '49', 'trunk_prefix': '0', 'lengths': [6, 13]},
        'FR': {'calling_code': '33', 'trunk_prefix': '0', 'lengths': [9, 9]},
        'NL': {'calling_code': '31', 'trunk_prefix': '0', 'lengths': [9, 9]},
        'ES': {'calling_code': '34', 'trunk_prefix': '', 'lengths': [9, 9]},
        'AU': {'calling_code': '61', 'trunk_prefix': '0', 'international_prefix': '0011', 'lengths': [9, 9]},
    } -%}
    {%- for country, rule in var('cdp_phone_countries', {}).items() -%}
        {%- do rules.update({country | upper: rule}) -%}
    {%- endfor -%}
    {{ return(rules) }}
{%- endmacro %}

{% macro cdp_normalize_phone(column, country_column=none) -%}
    {{ return(adapter.dispatch('cdp_normalize_phone', 'cdp')(column, country_column)) }}
{%- endmacro %}

{% macro default__cdp_normalize_phone(column, country_column=none) -%}
    {%- set rules = cdp_phone_country_rules() -%}
    {%- set default_country = (var('cdp_default_phone_country', none) or var('cdp_default_country', 'US')) | upper -%}
    {%- if default_country not in rules -%}
        {{ exceptions.raise_compiler_error(
            "var cdp_default_phone_country (or cdp_default_country) is '" ~ default_country ~ "', which has no phone rule. Use one of "
            ~ (rules.keys() | sort | join(', ')) ~ ", or describe it in var cdp_phone_countries "
            ~ "(see macros/staging/cdp_normalize_phone.sql).") }}
    {%- endif -%}
    {%- if country_column is none -%}
        {%- set country_sql = "'" ~ default_country ~ "'" -%}
        {%- set national_countries = [default_country] -%}
    {%- else -%}
        {%- set country_sql = 'coalesce(nullif(upper(trim(cast(' ~ country_column ~ ' as ' ~ dbt.type_string()
            ~ '))), \'\'), \'' ~ default_country ~ '\')' -%}
        {%- set national_countries = rules.keys() | sort -%}
    {%- endif -%}

    {#- digits and a leading +, after dropping an extension and a "(0)" -#}
    {%- set value = cdp_regexp_replace('lower(' ~ cdp_clean_identifier(column) ~ ')', '(ext|x|#).*$', '') -%}
    {%- set value = cdp_regexp_replace(value, '[(]0[)]', '') -%}
    {%- set value = cdp_regexp_replace(value, '[^0-9+]', '') -%}
    {%- set expr = namespace(sql=country_sql ~ " || ':' || " ~ value) -%}

    {#- international prefixes: the country's own, then 00 -#}
    {%- for country in national_countries -%}
        {%- set idd = rules[country].get('international_prefix', '00') -%}
        {%- if idd != '00' -%}
            {%- set expr.sql = cdp_regexp_replace(expr.sql, '^' ~ country ~ ':' ~ idd, country ~ ':+') -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set expr.sql = cdp_regexp_replace(expr.sql, '^([^:]*):00', '\\1:+') -%}

    {#- one digit repeated (0000000, 1111111111) is a placeholder, not a number -#}
    {%- set expr.sql = cdp_regexp_replace(expr.sql, '^[^:]*:[+]?(0+|1+|2+|3+|4+|5+|6+|7+|8+|9+)$', '') -%}

    {#- a trunk 0 written after the country code: +44 020 ... -#}
    {%- set trunk_codes = [] -%}
    {%- for rule in rules.values() -%}
        {%- if rule.get('trunk_prefix', '') == '0' and rule['calling_code'] not in trunk_codes -%}
            {%- do trunk_codes.append(rule['calling_code']) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if trunk_codes -%}
        {%- set pattern = '^([^:]*:)[+](' ~ (trunk_codes | sort | join('|')) ~ ')0' -%}
        {%- set expr.sql = cdp_regexp_replace(expr.sql, pattern, '\\1+\\2') -%}
    {%- endif -%}

    {#- national numbers, with the trunk prefix or the country code without + -#}
    {%- for country in national_countries -%}
        {%- set rule = rules[country] -%}
        {#- where the trunk prefix differs from the code (0 in GB), a number must carry one of them -#}
        {%- set trunk = rule.get('trunk_prefix', '') -%}
        {%- if trunk and trunk != rule['calling_code'] -%}
            {%- set prefix = '(' ~ trunk ~ '|' ~ rule['calling_code'] ~ ')' -%}
        {%- else -%}
            {%- set prefix = '(' ~ rule['calling_code'] ~ ')?' -%}
        {%- endif -%}
        {%- set pattern = '^' ~ country ~ ':' ~ prefix ~ '(' ~ rule.get('first_digit', '[1-9]')
            ~ '[0-9]{' ~ (rule['lengths'][0] - 1) ~ ',' ~ (rule['lengths'][1] - 1) ~ '})$' -%}
        {%- set expr.sql = cdp_regexp_replace(expr.sql, pattern, country ~ ':+' ~ rule['calling_code'] ~ '\\2') -%}
    {%- endfor -%}

    {#- lengths per known calling code (countries sharing a code share the widest range) -#}
    {%- set ranges = {} -%}
    {%- for rule in rules.values() -%}
        {%- set known = ranges.get(rule['calling_code'], rule['lengths']) -%}
        {%- do ranges.update({rule['calling_code']: [
            [known[0], rule['lengths'][0]] | min, [known[1], rule['lengths'][1]] | max]}) -%}
    {%- endfor -%}
    {%- for code in ranges.keys() | sort -%}
        {%- set expr.sql = cdp_regexp_replace(expr.sql, '^[^:]*:[+]' ~ code ~ '([0-9]{0,' ~ (ranges[code][0] - 1)
            ~ '}|[0-9]{' ~ (ranges[code][1] + 1) ~ ',})$', '') -%}
    {%- endfor -%}

    {{ cdp_regexp_full_match_or_null(cdp_regexp_replace(expr.sql, '^[^:]*:', ''), '[+][1-9][0-9]{7,14}') }}
{%- endmacro %}
