import pytest
from jinja2 import ChainableUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from relay.mapping.templates import ENVIRONMENT, compile_template
from relay.mapping.transforms import TransformError


def test_render_and_names():
    template = compile_template("  {{ first_name }} {{ last_name | upper }}  ")
    assert template.names == frozenset({"first_name", "last_name"})
    assert template.render({"first_name": "Rosa", "last_name": "Delgado"}) == "Rosa DELGADO"


def test_undefined_values_render_empty_even_when_chained():
    template = compile_template("{{ missing }}|{{ payload.a.b.c }}|{{ payload.x | default('d') }}")
    assert template.render({"payload": {}}) == "||d"


def test_payload_and_loops():
    template = compile_template("{% for item in payload['items'] %}{{ item }};{% endfor %}")
    assert template.names == frozenset({"payload"})
    assert template.render({"payload": {"items": [1, 2]}}) == "1;2;"


def test_syntax_errors_are_value_errors():
    with pytest.raises(ValueError, match="syntax"):
        compile_template("{{ a ")


@pytest.mark.parametrize("text", [
    "{% include 'x' %}", "{% extends 'base' %}", "{% import 'm' as m %}", "{% from 'm' import x %}",
])
def test_no_loader_and_no_template_references(text):
    with pytest.raises(ValueError, match="include, import or extend"):
        compile_template(text)


@pytest.mark.parametrize("text", [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ lipsum.__globals__ }}",
    "{{ joiner.__init__.__globals__.os }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ payload.__class__.__init__.__globals__ }}",
    "{{ payload.update({'a': 1}) }}",
    "{{ 'x' * 100000000 }}",
    "{{ range(10**9) | list }}",
    "{{ self.__init__.__globals__ }}",
    "{{ payload.items.__self__ }}",
    "{{ payload.k.__class__ }}",
    "{{ payload.k.__class__ }}{{ payload.k.__class__ }}",  # the second read comes from the remembered answer
    "{{ '{0.__class__.__mro__}'.format(payload.k) }}",
    "{{ '{k.__class__}'.format_map(payload) }}",
    "{{ payload.k.format.__globals__ }}",
])
def test_sandbox_never_leaks_internals(text):
    template = compile_template(text)
    try:
        rendered = template.render({"payload": {"k": "v"}})
    except TransformError as error:
        assert error.rule == "template"
        return
    assert rendered == ""  # an unknown global is only an empty value


def test_unsafe_globals_are_removed():
    for name in ("lipsum", "cycler", "joiner", "namespace"):
        assert name not in ENVIRONMENT.globals
    assert not ENVIRONMENT.autoescape and ENVIRONMENT.loader is None


def test_render_errors_refuse_with_rule_template():
    with pytest.raises(TransformError) as caught:
        compile_template("{{ 1 / 0 }}").render({})
    assert caught.value.rule == "template"


@pytest.mark.parametrize("text", [
    "{{ payload.k.strip().upper() }}", "{{ payload.k.split('v', 1)[0] }}-{{ payload.items }}",
    "{{ payload.get('k') }}{{ payload.keys | string }}", "{{ payload.n + 1 }}", "{{ '{}!'.format(payload.k) }}",
])
def test_the_shortcuts_render_what_the_stock_sandbox_renders(text):
    # A key named like a dict method ("items", "keys") still gives the method, as in Jinja.
    context = {"payload": {"k": " value ", "items": "shadowed?", "keys": "also", "n": 41}}
    stock = ImmutableSandboxedEnvironment(autoescape=False, undefined=ChainableUndefined)
    assert compile_template(text).render(context) == stock.from_string(text).render(context).strip()
