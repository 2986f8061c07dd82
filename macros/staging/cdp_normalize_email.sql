{#-
    An email address as identity stitching compares it: trimmed, lower-cased, a leading `mailto:`
    dropped, placeholders and well-known junk addresses (`test@test.com`, ...) removed, and null unless
    it has the shape local@domain.tld. Sub-addresses (`+tag`) and dots are kept: they are not always
    the same mailbox, and merging two people is worse than missing a match.
-#}

{#- Addresses that forms and testers type when they do not want to give one. Extend with var `cdp_junk_emails`. -#}
{% macro cdp_junk_email_values() -%}
    {%- set builtin = [
        'test@test.com', 'test@example.com', 'example@example.com', 'email@example.com',
        'user@example.com', 'a@a.com', 'a@b.com', 'abc@abc.com', 'asdf@asdf.com', 'email@email.com',
        'none@none.com', 'no@no.com', 'noemail@noemail.com', 'noemail@email.com', 'null@null.com',
        'test@gmail.com', 'x@x.com', 'xxx@xxx.com',
    ] -%}
    {{ return(builtin + var('cdp_junk_emails', [])) }}
{%- endmacro %}

{#- local part: dot-separated atoms (no leading, trailing or double dot); domain: labels, then a
    letters-only top-level domain. Quotes are doubled: the pattern goes into a SQL string. -#}
{% macro cdp_email_pattern() -%}
    {%- set atom = "[a-z0-9!#$%&''*+/=?^_`{|}~-]+" -%}
    {%- set label = "[a-z0-9]([a-z0-9-]*[a-z0-9])?" -%}
    {{- return(atom ~ "([.]" ~ atom ~ ")*@" ~ label ~ "([.]" ~ label ~ ")*[.][a-z]{2,}") -}}
{%- endmacro %}

{% macro cdp_normalize_email(column) -%}
    {{ return(adapter.dispatch('cdp_normalize_email', 'cdp')(column)) }}
{%- endmacro %}

{% macro default__cdp_normalize_email(column) -%}
    {%- set cleaned = cdp_clean_identifier(column, extra_values=cdp_junk_email_values()) -%}
    {%- set lowered = cdp_regexp_replace('lower(' ~ cleaned ~ ')', '^mailto:', '') -%}
    {{ cdp_regexp_full_match_or_null(lowered, cdp_email_pattern()) }}
{%- endmacro %}
