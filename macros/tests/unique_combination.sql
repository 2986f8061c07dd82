{#- Generic test: the combination of `columns` is unique. -#}
{% test cdp_unique_combination(model, columns) %}

select {{ columns | join(', ') }}, count(*) as rows_with_combination
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1

{% endtest %}
