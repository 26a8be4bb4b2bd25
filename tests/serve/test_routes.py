"""One route table: the gateway's endpoints, its error messages and the web page are built from it."""

from seqlab.serve.gateway import PAGE, _expected, api
from seqlab.serve.routes import BY_NAME, ROUTES, main_route, page_routes
from seqlab.tasks import TASKS


def test_every_route_is_served_for_the_first_model_of_its_task_and_by_name():
    paths = api.openapi()["paths"]
    for r in ROUTES:
        for path in (f"/v1/{r.path}", f"/v1/models/{{model}}/{r.path}"):
            body = paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            assert body.endswith("/" + r.request.__name__), (path, body)
    task_routes = {p for p in paths if p.startswith("/v1/") and "post" in paths[p]}
    assert len(task_routes) == 2 * len(ROUTES)  # no task route that the table does not list


def test_every_task_has_a_route_and_the_names_are_unique():
    assert {r.task for r in ROUTES} == set(TASKS)
    assert len(BY_NAME) == len(ROUTES)
    assert main_route("classify") == "classify" and main_route("molecule") == "molecules/sample"
    assert [r.name for r in ROUTES if r.batched] == ["classify"]


def test_error_messages_take_the_body_shape_from_the_table():
    assert _expected("/v1/molecules/encode") == BY_NAME["encode"].example
    assert _expected("/v1/models/cfpb:2/entities/classify") == BY_NAME["entities"].example
    assert _expected("/v1/nowhere") == "a JSON object"


def test_the_page_gets_its_paths_from_the_table():
    assert "__ROUTES__" not in PAGE
    assert f"const ROUTES = {__import__('json').dumps(page_routes())};" in PAGE
    assert "/entities/classify`" not in PAGE and 'route(m, "entities")' in PAGE
